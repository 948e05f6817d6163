package io.mmdit4j.vae;

import io.mmdit4j.runtime.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;

import java.util.function.Supplier;
import java.util.function.UnaryOperator;

/**
 * Memory discipline of the VAE forwards. Activations at image resolution are large (one fp32 tensor of a
 * 1024² FLUX decode's last block is 512 MB), so each block runs in its own scope and hands its result out
 * <em>owned</em> (attached to no scope), and the previous activation is freed as soon as the next exists,
 * as PyTorch's reference counting does. Every block {@code forward} in this package borrows its input and
 * returns an owned result.
 */
public final class Scoped {
    private Scoped() {}

    /** Runs {@code body} in its own scope; its temporaries die there, its result is returned owned. */
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
}
