package auth

import (
	"errors"
	"fmt"

	"github.com/go-json-experiment/json/jsontext"
)

// DetailType is the RFC 9396 authorization detail type of Mercure 1.0.
// [DetailTypeURI] is the name earlier 1.0 drafts used; both are accepted.
const (
	DetailType    = "mercure"
	DetailTypeURI = "https://mercure.rocks/authorization-detail"
)

// MatchType is the type of a Mercure 1.0 topic matcher.
type MatchType string

// The matcher types of Mercure 1.0. "*" is the wildcard whatever the type.
const (
	// MatchExact compares topics byte for byte. It is the default.
	MatchExact MatchType = "Exact"
	// MatchURLPattern matches topics with a WHATWG URL pattern.
	MatchURLPattern MatchType = "URLPattern"
)

// TopicMatcher is one entry of the topics of a [Detail].
type TopicMatcher struct {
	Match string
	Type  MatchType
}

// Detail is one mercure authorization detail of an access token.
type Detail struct {
	// Publish and Subscribe are the actions the detail grants.
	Publish, Subscribe bool
	// Topics are the matchers the actions apply to; never empty.
	Topics []TopicMatcher
	// Payload is the detail's "payload" member; nil when absent.
	Payload any
}

// Limits on the authorization_details claim: a token over them is invalid,
// so that one token cannot make the hub compile unbounded patterns.
const (
	MaxDetails       = 100  // mercure details per token
	MaxDetailTopics  = 100  // topic matchers summed over the details
	MaxMatcherLength = 2048 // bytes of one matcher
)

// rawDetail is the JSON shape of a mercure authorization detail.
type rawDetail struct {
	Type    string         `json:"type"`
	Actions []string       `json:"actions"`
	Topics  []rawMatcher   `json:"topics"`
	Payload jsontext.Value `json:"payload,omitzero"`
}

// rawMatcher is the JSON shape of a topic matcher. "matchType" is the
// draft's spelling, "match_type" the reference hub's; a token may use one.
type rawMatcher struct {
	Match      *string `json:"match"`
	MatchType  *string `json:"matchType"`
	MatchType2 *string `json:"match_type"`
}

// errDetail prefixes every authorization_details defect.
var errDetail = errors.New("authorization_details")

// parseDetails validates the authorization_details claim and returns its
// mercure entries. Entries of other types are skipped (RFC 9396 lets each
// type define its own members); any defect in a mercure entry invalidates
// the whole claim, as Mercure 1.0 forbids partial acceptance.
func parseDetails(raw jsontext.Value) ([]Detail, error) {
	if isNull(raw) {
		return nil, nil
	}
	var entries []jsontext.Value
	if err := decodeStrict(raw, &entries); err != nil {
		return nil, fmt.Errorf("%w: not an array of objects: %w", errDetail, err)
	}
	var out []Detail
	topics := 0
	for i, e := range entries {
		var head struct {
			Type string `json:"type"`
		}
		// Other members are the detail type's business; only the names are
		// checked here (exact, no duplicates).
		if err := decodeStrict(e, &head); err != nil {
			return nil, fmt.Errorf("%w[%d]: %w", errDetail, i, err)
		}
		if head.Type != DetailType && head.Type != DetailTypeURI {
			continue
		}
		var rd rawDetail
		if err := decodeStrict(e, &rd); err != nil {
			return nil, fmt.Errorf("%w[%d]: %w", errDetail, i, err)
		}
		if len(out) == MaxDetails {
			return nil, fmt.Errorf("%w: more than %d mercure details", errDetail, MaxDetails)
		}
		d, err := validateDetail(rd)
		if err != nil {
			return nil, fmt.Errorf("%w[%d]: %w", errDetail, i, err)
		}
		if topics += len(d.Topics); topics > MaxDetailTopics {
			return nil, fmt.Errorf("%w: more than %d topic matchers", errDetail, MaxDetailTopics)
		}
		out = append(out, d)
	}
	return out, nil
}

func validateDetail(rd rawDetail) (Detail, error) {
	var d Detail
	if len(rd.Actions) == 0 {
		return d, errors.New(`"actions" is missing or empty`)
	}
	for _, a := range rd.Actions {
		switch a {
		case "publish":
			d.Publish = true
		case "subscribe":
			d.Subscribe = true
		default:
			return d, fmt.Errorf("unknown action %q", a)
		}
	}
	if len(rd.Topics) == 0 {
		return d, errors.New(`"topics" is missing or empty`)
	}
	for _, m := range rd.Topics {
		if m.Match == nil {
			return d, errors.New(`a topic matcher has no "match"`)
		}
		tm := TopicMatcher{Match: *m.Match, Type: MatchExact}
		typ := m.MatchType
		if m.MatchType2 != nil {
			if typ != nil && *typ != *m.MatchType2 {
				return d, errors.New(`"matchType" and "match_type" disagree`)
			}
			typ = m.MatchType2
		}
		if typ != nil {
			tm.Type = MatchType(*typ)
		}
		if tm.Type != MatchExact && tm.Type != MatchURLPattern {
			return d, fmt.Errorf("unknown match type %q", tm.Type)
		}
		if why := checkMatcher(tm.Match); why != "" {
			return d, errors.New(why)
		}
		d.Topics = append(d.Topics, tm)
	}
	if !isNull(rd.Payload) {
		var p any
		if err := decodeStrict(rd.Payload, &p); err != nil {
			return d, fmt.Errorf("payload: %w", err)
		}
		d.Payload = p
	}
	return d, nil
}

// checkMatcher says why m cannot be a matcher, or "".
func checkMatcher(m string) string {
	if m == "" {
		return "empty topic matcher"
	}
	if len(m) > MaxMatcherLength {
		return fmt.Sprintf("topic matcher longer than %d bytes", MaxMatcherLength)
	}
	for _, r := range m {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f) {
			return "topic matcher contains a control character"
		}
	}
	return ""
}

// Matchers returns the topic matchers of the details that grant action
// ("publish" or "subscribe"), in token order.
func (c *Claims) Matchers(action string) []TopicMatcher {
	if c == nil {
		return nil
	}
	var out []TopicMatcher
	for _, d := range c.Details {
		if (action == "publish" && d.Publish) || (action == "subscribe" && d.Subscribe) {
			out = append(out, d.Topics...)
		}
	}
	return out
}
