// Plain Node http SSE broadcaster, as in the tutorials: a Set of responses,
// res.write('data: ...\n\n') to each on POST /publish (form field data).
const http = require('http');
const port = Number(process.argv[2] || 8094);
const clients = new Set();
const server = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url.startsWith('/events')) {
    res.writeHead(200, {
      'Content-Type': 'text/event-stream',
      'Cache-Control': 'no-cache',
      'Connection': 'keep-alive',
    });
    res.write(': connected\n\n');
    clients.add(res);
    req.on('close', () => clients.delete(res));
    return;
  }
  if (req.method === 'POST' && req.url.startsWith('/publish')) {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      const data = new URLSearchParams(body).get('data') || '';
      const msg = `data: ${data}\n\n`;
      for (const c of clients) c.write(msg);
      res.writeHead(204);
      res.end();
    });
    return;
  }
  res.writeHead(404);
  res.end();
});
server.keepAliveTimeout = 60000;
server.headersTimeout = 65000;
server.requestTimeout = 0;
server.maxConnections = 0 || Infinity;
server.listen(port, '127.0.0.1');
