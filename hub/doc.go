// Package hub serves the Mercure protocol over HTTP in front of a
// [broker.Broker]: publishing with POST, subscribing with GET, token
// authorization, CORS, and a health check.
//
// It speaks the classic, widely deployed form of Mercure (tokens with a
// "mercure" claim, "topic" parameters), so existing Mercure clients and
// framework integrations work unchanged.
//
// # Routes
//
//   - GET /.well-known/mercure?topic=... subscribes. topic is repeatable
//     (at least one); each is an exact topic, "*" or an RFC 6570 URI
//     template. The Last-Event-ID header, or the lastEventID query parameter
//     for clients that cannot set headers, asks for replay; when both are
//     present the header wins. The stream itself, including the
//     Last-Event-ID response header, is written by [broker.Broker.Subscribe].
//     Selectors beyond the limits of [broker.CheckSelectors] are refused with
//     400 before the token is verified, and compiled only after it; a replay
//     id longer than [store.MaxIDLen] or holding a control character is
//     refused with 400, so it is never echoed in a header.
//   - POST /.well-known/mercure publishes (see below).
//   - OPTIONS /.well-known/mercure answers CORS preflight requests.
//   - GET or HEAD /healthz answers 200 "ok".
//   - GET /.well-known/mercure/subscriptions[/{topic}[/{subscriber}]]
//     lists active subscriptions, when [Config.Subscriptions] is set (see
//     below; 404 otherwise).
//
// Other methods on these paths get 405 with an Allow header; other paths
// get 404.
//
// # Publishing
//
// The body must be application/x-www-form-urlencoded (415 otherwise;
// multipart is not supported) and at most [Config.MaxBodyBytes] long (413).
// Its fields:
//
//   - topic: repeatable, at least one. Non-empty UTF-8 without control
//     characters. A topic that is an absolute URL or an absolute path under
//     /.well-known/mercure is refused with 403: that namespace is kept for
//     events the hub generates itself.
//   - data: the payload, valid UTF-8, newlines allowed.
//   - id: the update id; generated ("urn:uuid:...") when absent. It must
//     not start with '#', contain CR, LF or NUL, or be "earliest" (reserved
//     for replay requests). An id already in the log is refused with 409.
//   - type: the SSE event type, without CR or LF.
//   - retry: the reconnection time in milliseconds, ASCII digits only.
//   - private: its presence, whatever its value, marks the update private.
//
// data, id, type and retry may appear at most once. Unknown fields are
// ignored, as Mercure allows extensions. The answer to a publication is
// 200 text/plain whose body is the update's id.
//
// # Authorization
//
// Tokens are JWTs with a "mercure" claim (see package
// [github.com/herald-sse/herald/auth]), taken from exactly one place: the
// Authorization header, else the authorization or access_token query
// parameter, else the mercureAuthorization cookie. A publisher needs a
// token signed with [Config.PublisherKey] whose mercure.publish selectors
// match every topic of the update. A subscriber needs no token unless
// [Config.RequireSubscriberToken] is set; the mercure.subscribe selectors of
// its token, signed with [Config.SubscriberKey], decide which private
// updates it receives. Failures follow RFC 6750: 401 with
// "WWW-Authenticate: Bearer" when a token is needed and missing, 401 with
// error="invalid_token" for a token that fails verification, 403 with
// error="insufficient_scope" for a topic the token does not cover.
//
// A POST from a browser page on another origin (detected with
// Sec-Fetch-Site or Origin by [http.CrossOriginProtection]) is refused with
// 403 unless that origin is listed in [Config.CORSOrigins], so a cookie
// token cannot be used for cross-site request forgery.
//
// # Active subscriptions
//
// With [Config.Subscriptions], the hub implements Mercure's active
// subscriptions. The broker reports every stream that starts or ends to
// [Hub.OnSubscription] (wire it as [broker.Config.OnSubscription]); the
// hub queues it without blocking (at most [MaxPendingPresence] waiting;
// more are dropped and logged) and its own goroutine, stopped by
// [Hub.Close], publishes one private update per topic selector of the
// stream to /.well-known/mercure/subscriptions/{topic}/{subscriber}, whose
// data is the JSON-LD document
//
//	{"@context":"https://mercure.rocks/","id":"<the topic>","type":"Subscription",
//	 "subscriber":"...","topic":"...","active":true,"payload":...}
//
// The subscriber is the token's "sub" claim, else a generated
// "urn:uuid:..."; payload is the token's mercure.payload, omitted when
// absent. {topic} and {subscriber} are percent-encoded as RFC 6570 expands
// a variable (everything but ALPHA, DIGIT, "-", ".", "_", "~"), so the
// selector "/.well-known/mercure/subscriptions{/topic}{/subscriber}"
// matches every event. GET on [SubscriptionsPath], on
// [SubscriptionsPath]/{topic} and on [SubscriptionsPath]/{topic}/{subscriber}
// answers application/ld+json: a "Subscriptions" collection (with
// "lastEventID", the id of the newest update in the log or "earliest") or
// one subscription (404 when it is not active). A request needs a
// subscriber token whose mercure.subscribe selectors match the requested
// path, in the same canonical encoding, as a topic: 401 without a valid
// token, 403 when it does not match.
//
// Every error is answered with its status, Content-Type
// "text/plain; charset=utf-8" and a one-line reason, and a rejected
// publication appends nothing.
package hub
