package loadgen

import (
	"bytes"
	"errors"
	"fmt"
)

// errStreamEnd reports that a chunked body ended with its last chunk.
var errStreamEnd = errors.New("loadgen: stream ended")

// receiver is told about every marker found on a data line.
type receiver interface {
	deliver(s *stream, seq uint64, sentNs int64)
}

// Body framing.
const (
	bodyIdentity uint8 = iota // close-delimited (or identity) body: bytes are the stream
	bodyChunked               // HTTP/1.1 chunked transfer coding
)

// Chunked decoder states.
const (
	csSize       uint8 = iota // reading the hex chunk size
	csExt                     // skipping a chunk extension up to LF
	csSizeLF                  // saw CR after the size, want LF
	csData                    // inside chunk data
	csDataCR                  // after chunk data, want CR
	csDataLF                  // after chunk data CR, want LF
	csTrailerBOL              // after the last chunk, at the start of a trailer line
	csTrailer                 // inside a trailer line
)

// Line scanner states. The zero state is the start of a line, with k bytes
// of "data:" matched so far.
const (
	lsPrefix uint8 = iota // matching "data:" at the start of a line
	lsSkip                // skipping to the end of the line
	lsScan                // on a data line, looking for '~'
	lsSeq                 // reading the decimal sequence number
	lsTS                  // reading the decimal send time
)

// maxDigits bounds the digits of a sequence number or timestamp.
const maxDigits = 19

// maxChunk bounds a chunk's declared size.
const maxChunk = 1 << 40

const dataPrefix = "data:"

// stream is the incremental per-connection parser: the chunked decoder, the
// SSE data line scanner and the ordering window. Its zero value is a
// close-delimited body at the start of a line. It does not allocate.
type stream struct {
	chunkRem uint64 // bytes left in the current chunk, or the size being read
	seq      uint64 // sequence number being read
	ts       int64  // send time being read
	last     uint64 // highest sequence number seen
	window   uint64 // bit i set: sequence last-i was seen
	body     uint8  // bodyIdentity or bodyChunked
	cs       uint8  // chunked decoder state
	ls       uint8  // line scanner state
	k        uint8  // prefix bytes matched, or digits read
	sized    bool   // csSize: at least one hex digit read
}

// feed parses p, which must not be retained, and calls r.deliver for every
// marker found. It returns errStreamEnd when a chunked body ends, or an
// error when the chunked framing is malformed.
func (s *stream) feed(p []byte, r receiver) error {
	if s.body == bodyIdentity {
		s.lines(p, r)
		return nil
	}
	for len(p) > 0 {
		switch s.cs {
		case csSize:
			b := p[0]
			p = p[1:]
			switch {
			case b >= '0' && b <= '9':
				s.chunkRem = s.chunkRem<<4 | uint64(b-'0')
				s.sized = true
			case b >= 'a' && b <= 'f':
				s.chunkRem = s.chunkRem<<4 | uint64(b-'a'+10)
				s.sized = true
			case b >= 'A' && b <= 'F':
				s.chunkRem = s.chunkRem<<4 | uint64(b-'A'+10)
				s.sized = true
			case b == ';' || b == ' ' || b == '\t':
				s.cs = csExt
			case b == '\r':
				s.cs = csSizeLF
			case b == '\n':
				if err := s.endSize(); err != nil {
					return err
				}
			default:
				return fmt.Errorf("loadgen: chunked body: bad chunk size byte %q", b)
			}
			if s.chunkRem > maxChunk {
				return errors.New("loadgen: chunked body: chunk size too large")
			}
		case csExt:
			i := bytes.IndexByte(p, '\n')
			if i < 0 {
				return nil
			}
			p = p[i+1:]
			if err := s.endSize(); err != nil {
				return err
			}
		case csSizeLF:
			if p[0] != '\n' {
				return fmt.Errorf("loadgen: chunked body: want LF after chunk size, got %q", p[0])
			}
			p = p[1:]
			if err := s.endSize(); err != nil {
				return err
			}
		case csData:
			n := uint64(len(p))
			if n > s.chunkRem {
				n = s.chunkRem
			}
			s.lines(p[:n], r)
			p = p[n:]
			s.chunkRem -= n
			if s.chunkRem == 0 {
				s.cs = csDataCR
			}
		case csDataCR:
			switch p[0] {
			case '\r':
				s.cs = csDataLF
			case '\n': // tolerate a bare LF
				s.cs = csSize
			default:
				return fmt.Errorf("loadgen: chunked body: want CRLF after chunk data, got %q", p[0])
			}
			p = p[1:]
		case csDataLF:
			if p[0] != '\n' {
				return fmt.Errorf("loadgen: chunked body: want LF after chunk data, got %q", p[0])
			}
			p = p[1:]
			s.cs = csSize
		case csTrailerBOL:
			b := p[0]
			p = p[1:]
			switch b {
			case '\n':
				return errStreamEnd
			case '\r':
			default:
				s.cs = csTrailer
			}
		case csTrailer:
			i := bytes.IndexByte(p, '\n')
			if i < 0 {
				return nil
			}
			p = p[i+1:]
			s.cs = csTrailerBOL
		}
	}
	return nil
}

// endSize finishes a chunk size line.
func (s *stream) endSize() error {
	if !s.sized {
		return errors.New("loadgen: chunked body: empty chunk size")
	}
	s.sized = false
	if s.chunkRem == 0 {
		s.cs = csTrailerBOL
		return nil
	}
	s.cs = csData
	return nil
}

// lines scans decoded body bytes for markers on data lines.
func (s *stream) lines(p []byte, r receiver) {
	for i := 0; i < len(p); i++ {
		b := p[i]
		if b == '\n' || b == '\r' {
			s.ls, s.k = lsPrefix, 0
			continue
		}
		switch s.ls {
		case lsPrefix:
			if b != dataPrefix[s.k] {
				s.ls = lsSkip
				continue
			}
			s.k++
			if int(s.k) == len(dataPrefix) {
				s.ls = lsScan
			}
		case lsSkip:
			j := indexEOL(p[i:])
			if j < 0 {
				return
			}
			i += j - 1 // the loop's i++ lands on the EOL byte
		case lsScan:
			if b == '~' {
				s.ls, s.k, s.seq = lsSeq, 0, 0
			}
		case lsSeq:
			switch {
			case b >= '0' && b <= '9' && s.k < maxDigits:
				s.seq = s.seq*10 + uint64(b-'0')
				s.k++
			case b == '~' && s.k > 0:
				s.ls, s.k, s.ts = lsTS, 0, 0
			case b == '~':
				s.k, s.seq = 0, 0 // "~~": the second '~' may start the marker
			default:
				s.ls = lsScan
			}
		case lsTS:
			switch {
			case b >= '0' && b <= '9' && s.k < maxDigits:
				s.ts = s.ts*10 + int64(b-'0')
				s.k++
			case b == '~' && s.k > 0:
				s.ls = lsSkip
				r.deliver(s, s.seq, s.ts)
			case b == '~':
				s.ls, s.k, s.seq = lsSeq, 0, 0
			default:
				s.ls = lsScan
			}
		}
	}
}

// observe records seq in the connection's ordering window. It reports
// whether seq was already seen (dup) or arrives after a higher one (late).
// Sequence numbers more than 64 below the highest seen count as late.
func (s *stream) observe(seq uint64) (dup, late bool) {
	if seq > s.last {
		if d := seq - s.last; d >= 64 {
			s.window = 0
		} else {
			s.window <<= d
		}
		s.window |= 1
		s.last = seq
		return false, false
	}
	d := s.last - seq
	if d >= 64 {
		return false, true
	}
	bit := uint64(1) << d
	if s.window&bit != 0 {
		return true, false
	}
	s.window |= bit
	return false, true
}

func indexEOL(p []byte) int {
	for i, b := range p {
		if b == '\n' || b == '\r' {
			return i
		}
	}
	return -1
}
