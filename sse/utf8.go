package sse

import "unicode/utf8"

// replacement is U+FFFD REPLACEMENT CHARACTER in UTF-8.
const replacement = "\uFFFD"

// appendUTF8 appends src to dst, replacing each invalid UTF-8 sequence as
// the Encoding Standard's UTF-8 decoder does: every maximal subpart of an
// ill-formed sequence becomes one U+FFFD. (Go's own conversions replace
// each bad byte, or each run of them, which differs from browsers.)
func appendUTF8(dst, src []byte) []byte {
	if utf8.Valid(src) {
		return append(dst, src...)
	}
	for len(src) > 0 {
		if src[0] < utf8.RuneSelf {
			dst = append(dst, src[0])
			src = src[1:]
			continue
		}
		if r, size := utf8.DecodeRune(src); r != utf8.RuneError || size > 1 {
			dst = append(dst, src[:size]...)
			src = src[size:]
			continue
		}
		dst = append(dst, replacement...)
		src = src[maximalSubpart(src):]
	}
	return dst
}

// utf8String returns b as a string, with invalid UTF-8 replaced as
// [appendUTF8] does.
func utf8String(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	return string(appendUTF8(make([]byte, 0, len(b)+8), b))
}

// maximalSubpart returns the length of the ill-formed sequence at the start
// of b: the lead byte and the continuation bytes that were acceptable after
// it, up to the byte that broke the sequence (which is not consumed). b
// must start with an invalid sequence.
func maximalSubpart(b []byte) int {
	c := b[0]
	lo, hi := byte(0x80), byte(0xBF)
	var need int
	switch {
	case c >= 0xC2 && c <= 0xDF:
		need = 1
	case c >= 0xE0 && c <= 0xEF:
		need = 2
		if c == 0xE0 {
			lo = 0xA0
		} else if c == 0xED {
			hi = 0x9F
		}
	case c >= 0xF0 && c <= 0xF4:
		need = 3
		if c == 0xF0 {
			lo = 0x90
		} else if c == 0xF4 {
			hi = 0x8F
		}
	default:
		return 1
	}
	n := 1
	for n <= need && n < len(b) && b[n] >= lo && b[n] <= hi {
		n++
		lo, hi = 0x80, 0xBF
	}
	return n
}
