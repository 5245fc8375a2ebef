// Preloaded (`node --import ./loopback.mjs`) into @modelcontextprotocol/server-everything's
// Streamable HTTP mode by scripts/conformance: that server listens on every interface
// (`app.listen(PORT)`, no host setting). This keeps it on loopback: a listen given a port
// and no host gets 127.0.0.1. And since it logs the port it was given (0: any free one),
// not the one it got, this logs `loopback: listening on http://127.0.0.1:PORT` on stderr
// once it listens.

import net from 'node:net';

const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function patchedListen(...args) {
  const [first, second] = args;
  const isPort = typeof first === 'number' || (typeof first === 'string' && /^\d+$/.test(first));
  if (isPort && (second === undefined || typeof second === 'function')) {
    args.splice(1, 0, '127.0.0.1');
  }
  this.once('listening', () => {
    const address = this.address();
    if (address && typeof address === 'object') {
      console.error(`loopback: listening on http://${address.address}:${address.port}`);
    }
  });
  return listen.apply(this, args);
};
