package io.mmdit4j.runtime;

import org.bytedeco.javacpp.Pointer;

/**
 * Ownership of native objects. A native object created while a {@code PointerScope} is open belongs to
 * that scope and dies with it; {@link #keep} gives it one more reference so that the caller becomes its
 * owner and must {@link #release} it. Models load their weights inside a scope and keep what they store,
 * so loading behaves the same whether or not the caller has a scope open.
 */
public final class Native {
    private Native() {}

    public static <P extends Pointer> P keep(P p) {
        p.retainReference();
        return p;
    }

    /** Drops the caller's reference; null and already-released objects are ignored. */
    public static void release(Pointer p) {
        if (p != null && !p.isNull()) p.releaseReference();
    }
}
