// Package loadgen is the engine behind `herald bench`: a load generator for
// Server-Sent Events hubs, Herald or any other.
//
// It opens many subscriber connections to one SSE URL, publishes events to a
// publish URL at a fixed rate or flat out, and measures what an SSE hub lives
// or dies by: connect time, server memory per idle subscriber, the time from
// publishing an event to its receipt by every subscriber, loss, ordering and
// server CPU per delivery.
//
// Each published event carries a payload of the form
//
//	~<seq>~<send time in Unix nanoseconds>~xxxx…
//
// padded with 'x' to the configured size. Every byte of it is safe unescaped
// in a URL query, an HTML form body and a JSON string, so the payload can be
// placed in any publish body template. Subscribers look for the first such
// marker in every `data:` line of the stream, wherever it is on the line, so
// hubs that wrap the data (in JSON, say) are measured too.
//
// The generator must not be the bottleneck. Subscriber connections are raw
// HTTP/1.1 TCP connections: the GET request is written by hand, the response
// head is parsed minimally and, on Linux, the socket is then handed to a
// small pool of epoll readers that read into one buffer per reader and run a
// tiny incremental per-connection parser (chunked and close-delimited bodies,
// `data:` lines, sequence number, send time) that does not allocate. About
// seventy bytes are kept per connection. Receipts are timed with the kernel's
// receive timestamps (SO_TIMESTAMPNS), so the readers' own scheduling delays
// are not counted as hub latency. Other systems use one goroutine per
// connection instead, timed when read.
//
// Publishers are lean too. Each publisher goroutine of a plain http publish
// URL has its own HTTP/1.1 keep-alive client over one raw TCP connection,
// opened when needed: the request head (method, target, Host, User-Agent
// herald-bench, Content-Type, the Header and PubHeader fields) is built
// once, each request is the head, its Content-Length and the body template
// with the payload in place, written into a reused buffer with one write,
// and the response is read through a reused buffer: the status line, the
// few header fields that frame the body (Content-Length, chunked
// Transfer-Encoding, Connection), interim 1xx responses skipped, bodies
// discarded (at most 1 MiB; chunked, sized or ended by the connection). A
// publish allocates nothing. A non-2xx status is a failed publish
// (redirects are not followed, unlike net/http's client); a
// network or protocol error is one too, and closes the connection, which
// the next publish reopens: a publish is never retried, so the counts stay
// exact. Each publish is bounded by PublishTimeout through the connection's
// deadline, and the run's end closes the connections. A connection left
// idle for a few milliseconds is checked for a close by the server before
// it is used, since a request written on it would fail through no fault of
// the hub. https URLs (and URLs or headers net/http would refuse) go
// through a shared net/http client instead, which costs several times the
// CPU per publish.
//
// Clocks: latencies compare the send time written by the publisher with the
// receipt time taken by the subscriber reader, both read from this process's
// wall clock, so publisher and subscribers must run in the same process, as
// they do here.
package loadgen
