package io.mmdit4j.nn;

import io.mmdit4j.io.StateDict;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Native;
import io.mmdit4j.runtime.Torch;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;

import java.util.ArrayList;
import java.util.List;
import java.util.function.BiFunction;
import java.util.function.Function;

/** Loading and closing groups of modules. */
public final class Modules {
    private Modules() {}

    /** Adds {@code module} to {@code built} (closed together if loading fails half-way) and returns it. */
    public static <T extends AutoCloseable> T track(List<AutoCloseable> built, T module) {
        built.add(module);
        return module;
    }

    /**
     * Runs {@code load}, which {@link #track}s each part it loads in the list it is given; if it fails half-way, the
     * parts loaded so far are closed before the exception propagates, so a failed load leaves no native memory behind.
     */
    public static <T> T loading(Function<List<AutoCloseable>, T> load) {
        List<AutoCloseable> built = new ArrayList<>();
        try {
            return load.apply(built);
        } catch (RuntimeException e) {
            closeAll(built);
            throw e;
        }
    }

    /**
     * The frame of a transformer's {@code fromStateDict}: with {@code offloadBlocks} the blocks' weights stay on the host
     * ({@link BlockOffload#isBlockWeight}); then checks the compute dtype, starts libtorch and runs {@code load} on the
     * tensors in a PointerScope (its temporaries), as {@link #loading}: the parts it tracked are closed if it fails half-way.
     */
    public static <T> T loadingModel(StateDict sd, DType compute, boolean offloadBlocks, BiFunction<StateDict, List<AutoCloseable>, T> load) {
        StateDict tensors = offloadBlocks ? sd.keepOnHost(BlockOffload::isBlockWeight) : sd;
        if (compute != DType.F64) DType.checkCompute(compute); // fp64: the training path's gradient checks
        return loadingScoped(built -> load.apply(tensors, built));
    }

    /**
     * The frame of a model's {@code fromStateDict}: starts libtorch and runs {@code load} in a PointerScope (its
     * temporaries), as {@link #loading}: the parts it tracked are closed if it fails half-way.
     */
    public static <T> T loadingScoped(Function<List<AutoCloseable>, T> load) {
        Torch.init();
        // weights bound for an accelerator go through pinned staging in batches; all copies are done when the load returns
        return io.mmdit4j.io.WeightUpload.during(() -> loading(built -> {
            try (PointerScope scope = new PointerScope()) {
                return load.apply(built);
            }
        }));
    }

    /**
     * Takes {@code prefix.weight} of shape {@code weightShape} and {@code prefix.bias} {@code [weightShape[0]]} and makes
     * the module of them (norms, convolutions); the weight is released when the bias is missing.
     */
    public static <T> T weightAndBias(StateDict sd, String prefix, DType dtype, BiFunction<Tensor, Tensor, T> make, long... weightShape) {
        Tensor w = sd.take(prefix + ".weight", dtype, weightShape);
        Tensor b;
        try {
            b = sd.take(prefix + ".bias", dtype, weightShape[0]);
        } catch (RuntimeException e) {
            Native.release(w);
            throw e;
        }
        return make.apply(w, b);
    }

    /** Closes a module that may be null (optional parts such as a guidance embedder). */
    public static void closeQuietly(AutoCloseable c) {
        if (c == null) return;
        try {
            c.close();
        } catch (Exception e) {
            throw new IllegalStateException("closing " + c.getClass().getSimpleName() + " failed", e);
        }
    }

    public static void closeAll(Iterable<? extends AutoCloseable> modules) {
        for (AutoCloseable c : modules) closeQuietly(c);
    }

    /** Closes every module, in order (a pipeline's text encoders, transformer and VAE). */
    public static void closeAll(AutoCloseable... modules) {
        for (AutoCloseable c : modules) closeQuietly(c);
    }
}
