// Package hub serves the Mercure protocol over HTTP in front of a
// [broker.Broker]: publishing with POST, subscribing with GET, token
// authorization, CORS, and a health check.
//
// It speaks both generations of Mercure on the same endpoint, decided per
// request: the classic, widely deployed form (tokens with a "mercure"
// claim, "topic" parameters), so existing Mercure clients and framework
// integrations work unchanged, and Mercure 1.0 (draft-08: "match" and
// "matchURLPattern" parameters, RFC 9068 at+jwt access tokens with
// authorization_details), so clients can migrate one by one. See
// docs/MERCURE.md in the repository for the differences.
//
// # Routes
//
//   - GET /.well-known/mercure?topic=... subscribes. topic is repeatable
//     (at least one); each is an exact topic, "*" or an RFC 6570 URI
//     template. The Last-Event-ID header, or the lastEventID query parameter
//     for clients that cannot set headers, asks for replay; when both are
//     present the header wins. The stream itself, including the
//     Last-Event-ID response header, is written by [broker.Broker.Subscribe].
//   - GET /.well-known/mercure?match=...&matchURLPattern=... subscribes
//     the Mercure 1.0 way: match (or matchExact) values are compared byte
//     for byte, matchURLPattern values are WHATWG URL patterns (relative
//     ones resolved against [Config.BaseURL]); "*" is every topic. The
//     earlier 1.0 draft names match_exact and match_urlpattern are
//     accepted too; any other parameter whose name starts with "match" (in
//     any case) is refused with 400, and so is a request that mixes
//     "topic" with "match" parameters. Replay also accepts last_event_id;
//     the response carries the Last-Event-ID and Mercure-Last-Event-ID
//     headers.
//   - HEAD /.well-known/mercure with either kind of parameters checks a
//     subscription (query, token) and answers its status and head without
//     opening a stream.
//     Selectors beyond the limits of [broker.CheckSelectors] are refused with
//     400 before the token is verified, and compiled only after it; a replay
//     id longer than [store.MaxIDLen] or holding a control character is
//     refused with 400, so it is never echoed in a header.
//   - POST /.well-known/mercure publishes (see below).
//   - GET /.well-known/oauth-protected-resource/.well-known/mercure
//     answers the RFC 9728 protected resource metadata ([Config.Resource],
//     [Config.AuthorizationServers]).
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
//   - topic: repeatable, at least one (exactly one with a Mercure 1.0
//     token: 400 otherwise). Non-empty UTF-8 without control characters,
//     and not "*" (the subscribers' wildcard: 400). A topic that is an
//     absolute URL or an absolute path under /.well-known/mercure is
//     refused with 403: that namespace is kept for events the hub
//     generates itself.
//   - data: the payload, valid UTF-8, newlines allowed.
//   - id: the update id; generated ("urn:uuid:...") when absent. It must
//     not start with '#', contain CR, LF or NUL, or be "earliest" (reserved
//     for replay requests). An id already in the log is refused with 409,
//     unless [Config.AllowReusedIDs] is set: then the hub assigns its own.
//   - type: the SSE event type, without CR or LF, and not "mercure".
//   - retry: the reconnection time in milliseconds, ASCII digits only.
//   - private: its presence, whatever its value, marks the update private.
//
// data, id, type and retry may appear at most once. Unknown fields are
// ignored, as Mercure allows extensions. The answer to a publication is
// 200 text/plain whose body is the update's id.
//
// # Batch publishing
//
// A Herald extension: a POST whose Content-Type is [BatchType]
// (application/x-ndjson) carries one JSON [BatchUpdate] per line, at most
// [Config.MaxBatch] updates and [Config.MaxBatchBytes] bytes (413 for the
// whole request, nothing stored), each line at most [Config.MaxBodyBytes].
// The token is checked once; each update is then validated and authorized
// as a form publish is, and the updates that pass are appended in order in
// one [broker.Broker.PublishBatch] call (with the boltstore, one
// transaction and one fsync for the whole request). The answer is 200
// application/x-ndjson with one [BatchResult] per update, in order: the
// status a single publish of that update would have had, its id, and the
// reason of a refusal. The batch stops at the first refused update: the
// ones after it are not stored and get [StatusNotAttempted] (424), so a
// client that retries from the refused update keeps its order. With the
// query on-error=continue every update is attempted. Updates carry ids
// chosen by the client so that a batch whose answer was lost can be sent
// again: a 409 then means the earlier attempt stored that update. The
// Herald-Batch-Stored response header counts the updates stored.
//
// # Authorization
//
// Tokens are JWTs: classic ones with a "mercure" claim, or Mercure 1.0
// access tokens (typ at+jwt) whose rights are the authorization_details of
// type "mercure" (see package [github.com/herald-sse/herald/auth]). A token
// is taken from exactly one place: the Authorization header, else the
// authorization or access_token query parameter (subscriptions only: a
// publish with a token in its URL is refused with 400 invalid_request, as
// URLs end up in logs), else the mercureAccessToken,
// __Secure-mercure_access_token or mercureAuthorization cookie. A
// publisher needs a token verified by [Config.PublisherVerifier] (or
// signed with [Config.PublisherKey]) whose publish rights match every
// topic of the update. A subscriber needs no token unless
// [Config.RequireSubscriberToken] is set; the subscribe rights of its
// token decide which private updates it receives. Failures follow RFC
// 6750: 401 with "WWW-Authenticate: Bearer" when a token is needed and
// missing, 401 with error="invalid_token" for a token that fails
// verification, 403 with error="insufficient_scope" for a topic the token
// does not cover; error_description repeats the one-line reason, which
// names the rule and never a key or the token.
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
// more are dropped, logged and made up for) and its own goroutines, stopped
// by [Hub.Close], keep the subscriptions list in [Config.Presence] (shared
// by the hubs of a cluster) and send, for every change of that list, one
// private update per topic selector of the stream to
// /.well-known/mercure/subscriptions/{topic}/{subscriber}. These updates are
// live only ([broker.Broker.PublishLive]): never stored in the history,
// without an id, not replayed. Their data is the JSON-LD document
//
//	{"@context":"https://mercure.rocks/","id":"<the topic>","type":"Subscription",
//	 "subscriber":"...","topic":"...","active":true,"payload":...}
//
// A Mercure 1.0 subscription (made with match or matchURLPattern) is
// announced in the 1.0 shape instead: the topic is
// /.well-known/mercure/subscriptions/{matchType}/{match}/{subscriber} and
// the document has "matchType" and "match" where the classic one has
// "topic"; its payload is that of the token's first subscribe detail
// whose matchers match the subscription's matcher. The API answers the
// 1.0 paths ([SubscriptionsPath]/Exact/..., [SubscriptionsPath]/URLPattern/...)
// beside the classic ones.
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
