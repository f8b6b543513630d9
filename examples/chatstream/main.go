// Command chatstream reads a streaming chat-completion API the way such
// APIs are read: a POST with a JSON body, answered with an event stream of
// JSON chunks that ends with "data: [DONE]". It prints the reply's text as
// it arrives.
//
// By default it starts a small local server that streams its reply token
// by token as chat-completion APIs do, and reads it:
//
//	go run ./examples/chatstream -prompt 'What is SSE?'
//
// -serve runs only the server, on -addr, for other clients such as
// `herald sub`; -url reads another OpenAI-compatible endpoint instead,
// with the key in the CHAT_API_KEY environment variable.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/herald-sse/herald/eventsource"
	"github.com/herald-sse/herald/sse"
)

func main() {
	addr := flag.String("addr", "localhost:0", "address of the local server (port 0: any free port)")
	serve := flag.Bool("serve", false, "only run the local server on -addr, until interrupted")
	remote := flag.String("url", "", "read this chat-completion `URL` instead of the local server (key in $CHAT_API_KEY)")
	model := flag.String("model", "demo", "model name sent in the request")
	prompt := flag.String("prompt", "What are Server-Sent Events?", "the user message")
	delay := flag.Duration("delay", 40*time.Millisecond, "local server: pause between two tokens")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *addr, *serve, *remote, *model, *prompt, *delay); err != nil {
		log.Fatal(err)
	}
}

// run starts the local server unless remote is set, and reads one reply
// from it (or only serves, with serveOnly).
func run(ctx context.Context, addr string, serveOnly bool, remote, model, prompt string, delay time.Duration) error {
	endpoint, key := remote, os.Getenv("CHAT_API_KEY")
	if remote == "" {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return err
		}
		srv := &http.Server{Handler: newServer(delay), ReadHeaderTimeout: 10 * time.Second}
		done := make(chan error, 1)
		go func() { done <- srv.Serve(ln) }()
		defer func() {
			_ = srv.Shutdown(context.Background())
			<-done
		}()
		endpoint = "http://" + ln.Addr().String() + "/v1/chat/completions"
		if serveOnly {
			log.Printf("chatstream: serving POST %s", endpoint)
			<-ctx.Done()
			return nil
		}
	}
	err := streamChat(ctx, endpoint, key, request{
		Model:    model,
		Stream:   true,
		Messages: []message{{Role: "user", Content: prompt}},
	}, os.Stdout)
	fmt.Println()
	return err
}

// request is the body of a chat-completion request.
type request struct {
	Model    string    `json:"model"`
	Stream   bool      `json:"stream"`
	Messages []message `json:"messages"`
}

type message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// chunk is the data of one event of the stream.
type chunk struct {
	ID      string   `json:"id"`
	Object  string   `json:"object"`
	Model   string   `json:"model"`
	Choices []choice `json:"choices"`
}

// choice is one choice of a chunk: a piece of the reply's text.
type choice struct {
	Index        int     `json:"index"`
	Delta        delta   `json:"delta"`
	FinishReason *string `json:"finish_reason"`
}

type delta struct {
	Role    string `json:"role,omitempty"`
	Content string `json:"content,omitempty"`
}

// streamChat sends req to url (with key as a bearer token, if not empty)
// and writes the text of the reply to out as it arrives. A refusal is
// returned with the API's own message.
func streamChat(ctx context.Context, url, key string, req request, out io.Writer) error {
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	header := http.Header{"Content-Type": {"application/json"}}
	if key != "" {
		header.Set("Authorization", "Bearer "+key)
	}
	c, err := eventsource.New(url, eventsource.Config{
		Method: http.MethodPost, // read once: a POST does not reconnect by default
		Body:   func() (io.Reader, error) { return bytes.NewReader(body), nil },
		Header: header,
		Until:  func(ev sse.Event) bool { return ev.Data == "[DONE]" },
	})
	if err != nil {
		return err
	}
	for ev, err := range c.Events(ctx) {
		if err != nil {
			return apiError(err)
		}
		var ch chunk
		if err := json.Unmarshal([]byte(ev.Data), &ch); err != nil {
			return fmt.Errorf("chatstream: event %q: %w", ev.Data, err)
		}
		for _, choice := range ch.Choices {
			if _, err := io.WriteString(out, choice.Delta.Content); err != nil {
				return err
			}
		}
	}
	return nil
}

// apiError returns err with the message of the API's JSON error body, if
// it has one.
func apiError(err error) error {
	var re *eventsource.ResponseError
	if !errors.As(err, &re) {
		return err
	}
	var body struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(re.RawBody, &body) == nil && body.Error.Message != "" {
		return fmt.Errorf("chatstream: %d %s: %s", re.StatusCode, http.StatusText(re.StatusCode), body.Error.Message)
	}
	return err
}

// newServer returns the local chat-completion server: POST
// /v1/chat/completions streams a reply, one token per event, pausing
// delay between tokens, then "data: [DONE]".
func newServer(delay time.Duration) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/chat/completions", func(w http.ResponseWriter, r *http.Request) {
		var req request
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
			refuse(w, "the body is not a chat-completion request: "+err.Error())
			return
		}
		if !req.Stream || len(req.Messages) == 0 {
			refuse(w, `this server only streams: send "stream": true and at least one message`)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		rc := http.NewResponseController(w)
		// Some APIs send a comment first, while the model starts; clients
		// ignore it.
		if _, err := io.WriteString(w, ": processing\n\n"); err != nil {
			return
		}
		toks := tokens(reply(req.Messages[len(req.Messages)-1].Content))
		stop := "stop"
		for i := 0; i <= len(toks); i++ {
			if i > 0 && delay > 0 {
				select {
				case <-time.After(delay):
				case <-r.Context().Done():
					return
				}
			}
			c := choice{FinishReason: &stop} // the last chunk has no text
			if i < len(toks) {
				c = choice{Delta: delta{Content: toks[i]}}
			}
			ch := chunk{ID: "chatcmpl-local", Object: "chat.completion.chunk", Model: req.Model, Choices: []choice{c}}
			if err := writeData(w, ch); err != nil {
				return
			}
			if err := rc.Flush(); err != nil {
				return
			}
		}
		_, _ = io.WriteString(w, "data: [DONE]\n\n")
		_ = rc.Flush()
	})
	return mux
}

// refuse answers a bad request with a JSON error, as APIs do.
func refuse(w http.ResponseWriter, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"message": msg, "type": "invalid_request_error"}})
}

// writeData writes v as the JSON data of one event.
func writeData(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return sse.NewEncoder(w).Encode(sse.Event{Data: string(b)})
}

// reply is the local server's answer to prompt.
func reply(prompt string) string {
	return fmt.Sprintf("You asked: %q. Server-Sent Events are a one-way stream of text events over HTTP, "+
		"and this reply arrives the way model APIs send theirs: one token per event.", prompt)
}

// tokens splits s into word-sized pieces, each with the space before the
// next word, so that joining them gives s back.
func tokens(s string) []string {
	var out []string
	for s != "" {
		i := strings.IndexByte(s, ' ')
		if i < 0 {
			out = append(out, s)
			break
		}
		out = append(out, s[:i+1])
		s = s[i+1:]
	}
	return out
}
