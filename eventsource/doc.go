// Package eventsource is a Go client for Server-Sent Events with the
// semantics of the browser EventSource interface (WHATWG HTML, section
// "Server-sent events").
//
// A [Client] is created with [New] and read with [Client.Events], an
// iterator that runs the connection loop in the caller's goroutine:
//
//	c, err := eventsource.New("https://hub.example/.well-known/mercure?topic=news", eventsource.Config{})
//	if err != nil {
//		return err
//	}
//	for ev, err := range c.Events(ctx) {
//		if err != nil {
//			return err // always the last value of the iteration
//		}
//		fmt.Println(ev.ID, ev.Type, ev.Data)
//	}
//
// The package starts no goroutine of its own: nothing outlives the loop.
// Breaking out of the loop or cancelling ctx closes the response body.
// [Client.Run] is a callback form of the same loop.
//
// # Reading any SSE API
//
// The same client reads the streaming responses of HTTP APIs, which are
// opened with a POST and a JSON body, authenticated by a header, and end
// with the response or with a terminal event such as "data: [DONE]":
//
//	c, err := eventsource.New("https://api.example/v1/chat/completions", eventsource.Config{
//		Method: http.MethodPost,
//		Body:   func() (io.Reader, error) { return bytes.NewReader(reqJSON), nil },
//		Header: http.Header{"Content-Type": {"application/json"}, "Authorization": {"Bearer " + key}},
//		Until:  func(ev sse.Event) bool { return ev.Data == "[DONE]" },
//	})
//	...
//	for ev, err := range c.Events(ctx) {
//		if err != nil {
//			return err // a *ResponseError holds the API's JSON error in RawBody
//		}
//		// decode ev.Data
//	}
//	// the stream is complete
//
// [Config.Reconnect] chooses between the browser behaviour (reconnect
// with Last-Event-ID, the default for GET) and one-shot reading (the
// default for other methods: the iteration ends with the response, with
// no error if it ended cleanly). [ReconnectAlways] reconnects a POST too,
// calling [Config.Body] again to resend the body. [Config.OnRequest] runs
// before each attempt, for example to refresh a token, and
// [Config.OnComment] receives comment lines, which are otherwise ignored.
//
// # Spec rules implemented
//
//   - Requests are GET with "Accept: text/event-stream" and
//     "Cache-Control: no-cache"; other headers come from [Config.Header].
//     ([Config.Method] and [Config.Body] send other requests.)
//   - The stream is parsed by package sse exactly as the spec says (CR, LF
//     and CRLF line endings, BOM, comments, "id" values with NUL ignored,
//     "retry" digits only). An event is delivered with its type ("message"
//     when absent), its data and the last event ID in effect.
//   - The unfinished final event of a stream that ends or breaks is
//     discarded; the last event ID stays the one of the last complete
//     event block.
//   - A response is a stream only if its status is 200 and its
//     Content-Type essence is text/event-stream (parameters such as
//     "; charset=utf-8" are allowed). Any other response fails the
//     connection for good with a [*ResponseError] that gives the status,
//     the content type and a short excerpt of the body.
//   - Redirects (301, 302, 303, 307, 308) are followed by net/http; every
//     reconnection starts again from the original URL.
//   - After a network error or the end of a stream the client waits the
//     reconnection time (initially [Config.InitialRetry], 3 s by default,
//     then the latest "retry" field sent by the server) and reconnects.
//   - The last event ID persists across connections: each connection's
//     decoder starts from it, so an event without an "id" field carries
//     the previous ID, and a connection that ends before any event
//     (or with an unfinished one) leaves it unchanged.
//   - Every reconnection sends "Last-Event-ID" with the last event ID
//     string, unless that string is empty, in which case no such header is
//     sent (the server can clear it with an empty "id" field).
//
// # Differences from browsers
//
//   - A non-empty [Config.LastEventID] is sent on the first connection too,
//     so a program can resume where an earlier run stopped.
//   - After repeated consecutive failures (connections that fail, and
//     streams that end without delivering an event) the wait grows
//     exponentially with random jitter, up to [Config.MaxRetry]; it never
//     drops below the reconnection time. The first successful event resets
//     it. Browsers use a fixed wait.
//   - 204 No Content ends the iteration with [ErrNoContent] so that the
//     caller can tell "the server told us to stop" from other errors.
//   - [Config.RetryNonStreamErrors] makes non-200 responses (except 204)
//     and wrong content types reconnect with backoff instead of failing.
//   - A 429 or 503 response with a Retry-After header is retried after
//     that delay (or the reconnection time, if longer) instead of failing,
//     when the client reconnects.
//   - Requests other than GET, one-shot streams, terminal events and
//     comments (see above) are extensions for APIs; a browser's
//     EventSource has none of them.
//   - An event larger than [Config.MaxEventSize] ends the iteration with an
//     error matching sse.ErrTooLarge; it is never truncated. Browsers have
//     no limit.
//   - net/http drops Authorization, WWW-Authenticate and Cookie headers on
//     a redirect to a host that is neither the original host nor one of its
//     subdomains; all other headers, including Last-Event-ID, are kept.
//     Browsers (Fetch) likewise drop Authorization on cross-origin
//     redirects.
//   - [Config.IdleTimeout] optionally drops and reopens a connection that
//     stays silent too long (set it above the server's heartbeat period).
//     Browsers have no such timeout.
//   - There are no readyState, withCredentials or "error" events: transient
//     errors are logged to [Config.Logger] and retried, and only terminal
//     errors are yielded. [Config.OnOpen] plays the role of the "open"
//     event and sees each response, for example the "Last-Event-ID:
//     earliest" header a Mercure hub sends when it cannot resume from the
//     requested ID.
package eventsource
