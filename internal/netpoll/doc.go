// Package netpoll parks idle streaming connections with a small, fixed pool
// of writer goroutines driven by epoll, so that an idle subscriber costs a
// few hundred bytes instead of a goroutine, its stack and its bufio buffers.
//
// The caller hands a connection to a [Poller] with [Poller.Register],
// together with a [Source] that produces the connection's pending bytes.
// When the source has something new it calls [Conn.Wake]; one of the
// poller's writer goroutines then calls [Source.Take] and writes the bytes
// with non-blocking vectored writes. When the socket buffer is full the
// unwritten remainder is kept on the connection and the writer waits for the
// socket to become writable again (EPOLLOUT), without taking anything more
// from the source in the meantime, so the source's own backlog limit decides
// when a slow reader is dropped.
//
// The poller notices a peer that goes away (EPOLLRDHUP, EPOLLHUP, EPOLLERR, a
// read of end-of-file, or a write error) and reports it once through
// [Source.Closed]. Bytes the peer sends are read and discarded: a
// server-sent events client has nothing to say after its request, and
// discarding keeps the receive buffer from filling up without punishing a
// client that sends, say, a stray newline.
//
// The poller owns a registered connection: it never calls Read or Write on
// the net.Conn (Go's own netpoller keeps the descriptor registered too,
// which is harmless), and it closes the connection through net.Conn.Close
// after removing it from its epoll set.
//
// A worker with nothing to do is an ordinary parked goroutine: its epoll
// set is watched by Go's own netpoller, not by a thread blocked in
// epoll_wait.
//
// With [Config.IOUring] each worker submits the sends of one pass over its
// woken connections with a single io_uring_enter call instead of one
// sendmsg per connection, and falls back to sendmsg when the kernel refuses
// io_uring.
//
// Netpoll works on Linux only. Elsewhere [New] returns [ErrUnsupported] and
// callers keep one goroutine per stream.
package netpoll
