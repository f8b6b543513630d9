package redisstore

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/herald-sse/herald/store"
)

// errCorrupt reports a stream entry that is not an encoded update.
var errCorrupt = errors.New("corrupt entry")

// streamID returns the stream entry id of seq.
func streamID(seq uint64) string {
	return "0-" + strconv.FormatUint(seq, 10)
}

// parseStreamID returns the Seq of the stream entry id "0-<seq>".
func parseStreamID(id string) (uint64, error) {
	rest, ok := strings.CutPrefix(id, "0-")
	if !ok {
		return 0, fmt.Errorf("%w: stream id %q", errCorrupt, id)
	}
	seq, err := strconv.ParseUint(rest, 10, 64)
	if err != nil || seq == 0 {
		return 0, fmt.Errorf("%w: stream id %q", errCorrupt, id)
	}
	return seq, nil
}

// encodeTopics returns topics as a JSON array of strings.
func encodeTopics(topics []string) (string, error) {
	b, err := json.Marshal(topics)
	return string(b), err
}

// encodeTime returns t as "<unix seconds>.<9-digit nanoseconds>".
func encodeTime(t time.Time) string {
	b := strconv.AppendInt(make([]byte, 0, 32), t.Unix(), 10)
	ns := strconv.AppendInt(make([]byte, 0, 9), int64(t.Nanosecond()), 10)
	b = append(b, '.')
	b = append(b, "000000000"[len(ns):]...)
	return string(append(b, ns...))
}

// parseTime parses the output of encodeTime.
func parseTime(s string) (time.Time, error) {
	sec, frac, ok := strings.Cut(s, ".")
	if !ok || len(frac) != 9 {
		return time.Time{}, fmt.Errorf("%w: time %q", errCorrupt, s)
	}
	secs, err1 := strconv.ParseInt(sec, 10, 64)
	nsec, err2 := strconv.ParseUint(frac, 10, 32)
	if err1 != nil || err2 != nil {
		return time.Time{}, fmt.Errorf("%w: time %q", errCorrupt, s)
	}
	return time.Unix(secs, int64(nsec)), nil
}

// decodeEntry decodes one XRANGE entry, as returned by a raw command: an
// array of the stream id and a flat array of field names and values.
func decodeEntry(v any) (store.Update, error) {
	e, ok := v.([]any)
	if !ok || len(e) != 2 {
		return store.Update{}, fmt.Errorf("%w: %T", errCorrupt, v)
	}
	id, _ := e[0].(string)
	seq, err := parseStreamID(id)
	if err != nil {
		return store.Update{}, err
	}
	fields, ok := e[1].([]any)
	if !ok || len(fields)%2 != 0 {
		return store.Update{}, fmt.Errorf("%w: fields of %s", errCorrupt, id)
	}
	u := store.Update{Seq: seq}
	var seen int
	for i := 0; i < len(fields); i += 2 {
		name, _ := fields[i].(string)
		val, ok := fields[i+1].(string)
		if !ok {
			return store.Update{}, fmt.Errorf("%w: field %q of %s", errCorrupt, name, id)
		}
		switch name {
		case "id":
			u.ID, seen = val, seen|1
		case "topics":
			if err := json.Unmarshal([]byte(val), &u.Topics); err != nil {
				return store.Update{}, fmt.Errorf("%w: topics of %s: %v", errCorrupt, id, err)
			}
			seen |= 2
		case "type":
			u.Type = val
		case "data":
			u.Data = val
		case "retry":
			n, err := strconv.ParseInt(val, 10, 64)
			if err != nil || n < 0 {
				return store.Update{}, fmt.Errorf("%w: retry %q of %s", errCorrupt, val, id)
			}
			u.Retry = time.Duration(n)
		case "private":
			u.Private = val == "1"
		case "time":
			if u.Time, err = parseTime(val); err != nil {
				return store.Update{}, fmt.Errorf("%w (entry %s)", err, id)
			}
			seen |= 4
		}
	}
	if seen != 7 {
		return store.Update{}, fmt.Errorf("%w: entry %s lacks id, topics or time", errCorrupt, id)
	}
	return u, nil
}

// entryOverhead is what each entry counts for against Config.MaxBytes on
// top of its field values.
const entryOverhead = 64

// entrySize is what an entry with these field values counts for against
// Config.MaxBytes: the bytes of the values plus entryOverhead, at least
// store.Size of the update. appendScript computes the same.
func entrySize(values ...string) int64 {
	n := int64(entryOverhead)
	for _, v := range values {
		n += int64(len(v))
	}
	return n
}
