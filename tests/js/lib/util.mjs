// Small helpers: bounded waits. Every wait in these tests goes through one of them, so nothing
// can hang a test run; sleep() is only for waits that the protocol itself is about (timeouts).

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// Resolves or rejects like promise, or rejects after ms with a message naming what was awaited.
export function within(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// Polls fn (sync or async) until it returns a truthy value, which is returned.
export async function waitUntil(fn, { timeout = 5000, interval = 20, what = "a condition" } = {}) {
  const end = Date.now() + timeout;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() >= end) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await sleep(interval);
  }
}

// A promise with its resolve and reject exposed.
export function deferred() {
  let resolve, reject;
  const promise = new Promise((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

// The next `event` of an EventEmitter-like object (on/off), as the array of its arguments.
export function nextEvent(emitter, event, ms = 5000) {
  let handler;
  const p = new Promise((resolve) => {
    handler = (...args) => resolve(args);
    emitter.on(event, handler);
  });
  return within(p, ms, `event "${event}"`).finally(() => emitter.off(event, handler));
}

// Records every `event` of emitter; .items is the list of argument arrays, .next() waits for
// the next one not yet taken, .waitCount(n) for n in all.
export function collect(emitter, event) {
  const items = [];
  const waiters = [];
  let taken = 0;
  const handler = (...args) => {
    items.push(args);
    for (const w of waiters.splice(0)) w();
  };
  emitter.on(event, handler);
  const changed = () => new Promise((resolve) => waiters.push(resolve));
  return {
    items,
    async next(ms = 5000) {
      const end = Date.now() + ms;
      while (taken >= items.length) {
        const left = end - Date.now();
        if (left <= 0) throw new Error(`timed out after ${ms} ms waiting for event "${event}"`);
        await within(changed(), left, `event "${event}"`);
      }
      return items[taken++];
    },
    async waitCount(n, ms = 5000) {
      const end = Date.now() + ms;
      while (items.length < n) {
        const left = end - Date.now();
        if (left <= 0) throw new Error(`timed out after ${ms} ms waiting for ${n} "${event}" events (got ${items.length})`);
        await within(changed(), left, `${n} "${event}" events (got ${items.length})`);
      }
      return items;
    },
    stop() {
      emitter.off(event, handler);
    },
  };
}
