package io.mmdit4j.runtime;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;

import java.util.function.Supplier;
import java.util.function.UnaryOperator;

/**
 * Bounded activation memory. A {@link PointerScope} frees its temporaries only when it closes, so a forward
 * run in one scope holds every intermediate of every block until it returns (for FLUX at 1024² that is
 * tens of GB). Model code therefore runs each block in its own scope and hands the block's result out
 * <em>owned</em>, freeing the previous activation as soon as the next exists — what PyTorch's reference
 * counting does by itself.
 */
public final class Scopes {
    private Scopes() {}

    /** Runs {@code body} in its own scope; its temporaries die there, its result is returned owned (close it). */
    public static Tensor owned(Supplier<Tensor> body) {
        try (PointerScope scope = new PointerScope()) {
            return Tensors.keep(body.get());
        }
    }

    /** {@code next = step(current)}, then frees {@code current} (an owned activation), also when the step fails. */
    public static Tensor then(Tensor current, UnaryOperator<Tensor> step) {
        try {
            return step.apply(current);
        } finally {
            current.close();
        }
    }

    /**
     * Runs {@code body} in its own scope and returns its result as if it had been computed in the caller's
     * scope: a module's internals (q/k/v, MLP hidden states) die before the module returns.
     */
    public static Tensor local(Supplier<Tensor> body) {
        return adopt(owned(body));
    }

    /** {@link #local} for a module with several outputs (null entries allowed). */
    public static Tensor[] localAll(Supplier<Tensor[]> body) {
        Tensor[] out;
        try (PointerScope scope = new PointerScope()) {
            out = body.get().clone();
            for (Tensor t : out) if (t != null) Tensors.keep(t);
        }
        for (Tensor t : out) if (t != null) adopt(t);
        return out;
    }

    /**
     * Gives an owned tensor to the innermost open scope (it then dies with that scope, like any op result
     * there); without an open scope the caller keeps owning it.
     */
    public static Tensor adopt(Tensor owned) {
        PointerScope scope = PointerScope.getInnerScope();
        if (scope != null) {
            scope.attach(owned); // attach adds the scope's reference
            owned.releaseReference();
        }
        return owned;
    }
}
