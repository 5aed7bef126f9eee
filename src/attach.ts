/**
 * How a room of the package (src/serve/, src/io/) adds its entry points to a class it depends on:
 * as the class's own methods would be, non-enumerable and writable, so that `for...in`, spreading
 * and Object.keys see no difference from methods written in the class body. The room declares them
 * on the class's type by module augmentation (`declare module '../gru.js' { interface GRU { ... } }`).
 */

/** Defines `methods` on `target` (a prototype for instance methods, a constructor for static ones). */
export function attachMethods(target: object, methods: Record<string, (...args: never[]) => unknown>): void {
  for (const [name, method] of Object.entries(methods)) {
    Object.defineProperty(target, name, { value: method, writable: true, enumerable: false, configurable: true });
  }
}
