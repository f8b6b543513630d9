// Command h2load measures a hub's memory per stream and CPU per delivery
// with event streams multiplexed over HTTP/2 (HTTPS or h2c), or over
// HTTP/1.1 (one connection per stream) for comparison. The server's
// memory and CPU come from /proc/PID (Linux).
//
//	herald serve --store memory --tls-cert c.pem --tls-key k.pem --publisher-key $KEY &
//	go run ./bench/h2load -url https://127.0.0.1:8080/.well-known/mercure -insecure \
//	    -streams 2000 -conns 4 -events 20 -token $TOKEN -pid $!
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-sse/herald/sse"
)

func main() {
	hub := flag.String("url", "https://127.0.0.1:8080/.well-known/mercure", "Mercure endpoint")
	streams := flag.Int("streams", 2000, "event streams")
	conns := flag.Int("conns", 4, "HTTP/2 connections the streams share (ignored with -h1)")
	events := flag.Int("events", 20, "updates to publish")
	rate := flag.Float64("rate", 10, "updates per second")
	token := flag.String("token", os.Getenv("HERALD_TOKEN"), "publisher token")
	pid := flag.Int("pid", 0, "server process id (memory and CPU from /proc)")
	insecure := flag.Bool("insecure", false, "do not verify the server certificate")
	h1 := flag.Bool("h1", false, "HTTP/1.1: one connection per stream")
	h2c := flag.Bool("h2c", false, "cleartext HTTP/2 (prior knowledge)")
	flag.Parse()

	newTransport := func() *http.Transport {
		tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: *insecure}, MaxConnsPerHost: 0}
		var p http.Protocols
		switch {
		case *h1:
			p.SetHTTP1(true)
		case *h2c:
			p.SetUnencryptedHTTP2(true)
		default:
			p.SetHTTP2(true)
		}
		tr.Protocols = &p
		return tr
	}
	clients := make([]*http.Client, *conns)
	for i := range clients {
		clients[i] = &http.Client{Transport: newTransport()}
		if !*h1 { // establish the connection first, so that streams share it
			resp, err := clients[i].Get(strings.TrimSuffix(*hub, "/.well-known/mercure") + "/healthz")
			if err != nil {
				log.Fatal(err)
			}
			resp.Body.Close()
		}
	}
	rssBefore := rss(*pid)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var opened, received atomic.Int64
	var wg sync.WaitGroup
	const topic = "urn:herald:h2load"
	start := time.Now()
	for i := range *streams {
		c := clients[i%len(clients)]
		wg.Go(func() {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, *hub+"?topic="+url.QueryEscape(topic), nil)
			resp, err := c.Do(req)
			if err != nil {
				if ctx.Err() == nil {
					log.Printf("stream %d: %v", i, err)
				}
				return
			}
			defer resp.Body.Close()
			opened.Add(1)
			dec := sse.NewDecoder(resp.Body)
			for {
				if _, err := dec.Next(); err != nil {
					return
				}
				received.Add(1)
			}
		})
	}
	for opened.Load() < int64(*streams) {
		if time.Since(start) > 60*time.Second {
			log.Fatalf("only %d of %d streams open after 60s", opened.Load(), *streams)
		}
		time.Sleep(10 * time.Millisecond)
	}
	connectTime := time.Since(start)
	time.Sleep(time.Second)
	rssConnected := rss(*pid)
	cpuBefore := cpu(*pid)
	pub := &http.Client{Transport: newTransport()}
	tick := time.NewTicker(time.Duration(float64(time.Second) / *rate))
	for i := range *events {
		<-tick.C
		form := url.Values{"topic": {topic}, "data": {strconv.Itoa(i) + strings.Repeat("x", 100)}}
		req, _ := http.NewRequest(http.MethodPost, *hub, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", "Bearer "+*token)
		resp, err := pub.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			log.Fatalf("publish: %s", resp.Status)
		}
	}
	want := int64(*streams * *events)
	deadline := time.Now().Add(30 * time.Second)
	for received.Load() < want && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cpuUsed := cpu(*pid) - cpuBefore
	cancel()
	wg.Wait()
	mode := "HTTP/2 over TLS"
	switch {
	case *h1:
		mode = "HTTP/1.1"
		if strings.HasPrefix(*hub, "https") {
			mode += " over TLS"
		}
	case *h2c:
		mode = "h2c"
	}
	fmt.Printf("%s: %d streams", mode, *streams)
	if !*h1 {
		fmt.Printf(" on %d connections", *conns)
	}
	fmt.Printf(", connected in %v, %d/%d delivered\n", connectTime.Round(time.Millisecond), received.Load(), want)
	if *pid != 0 {
		fmt.Printf("server rss %.1f KiB per stream; cpu %.2f µs per delivery\n",
			float64(rssConnected-rssBefore)/1024/float64(*streams), cpuUsed.Seconds()*1e6/float64(received.Load()))
	}
}

// rss returns the VmRSS of pid in bytes.
func rss(pid int) int64 {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		log.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// cpu returns the user+system CPU time of pid.
func cpu(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		log.Fatal(err)
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond // USER_HZ = 100
}
