// AbortSignal's addEventListener and removeEventListener cost microseconds each (EventTarget),
// and a run adds and removes one per step of thousands of flows: one real listener per
// signal, and the callbacks in a Set.
const callbacksBySignal = new WeakMap<AbortSignal, Set<() => void>>();

/** Calls `callback` once when `signal` aborts; returns the function that unregisters it. */
export function onAbort(signal: AbortSignal, callback: () => void): () => void {
	let callbacks = callbacksBySignal.get(signal);
	if (!callbacks) {
		const created = new Set<() => void>();
		callbacksBySignal.set(signal, created);
		signal.addEventListener('abort', () => {
			for (const registered of created) {
				registered();
			}

			created.clear();
		}, { once: true });
		callbacks = created;
	}

	callbacks.add(callback);
	return () => callbacks.delete(callback);
}
