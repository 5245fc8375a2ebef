// A client-side workaround the checks that count progress notifications share.
//
// SDK 1.32.2 runs a notification's handler a microtask later but a response's at once
// (Protocol._onnotification vs _onresponse), and the response retires its request's progress
// handler. When a final progress notification and the response are dispatched in the same
// turn, which SSEClientTransport's EventSource does for events that arrive in one read, the
// progress is dropped ("Received a progress notification for an unknown token") although the
// server sent it first (typescript-sdk issue #2580; fix proposed in PRs #2378, #2586).
// keepArrivalOrder defers each response by one microtask, behind the notification handlers
// already queued, so messages are handled in the order they arrived; a progress notification
// that really comes after its response is still reported. The same on both transports.

/** Installs the workaround on a connected transport (after `client.connect`). */
export function keepArrivalOrder(transport) {
  const deliver = transport.onmessage;
  transport.onmessage = (message, extra) => {
    if (message && typeof message === 'object' && !('method' in message)) {
      queueMicrotask(() => deliver(message, extra));
    } else {
      deliver(message, extra);
    }
  };
}
