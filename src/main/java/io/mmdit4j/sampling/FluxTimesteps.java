package io.mmdit4j.sampling;

import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Native;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch.ScalarType;

import static org.bytedeco.pytorch.global.torch.full;

/**
 * The cast chain of FLUX's timestep and guidance (MODEL-SPEC H.2). {@code FluxPipeline} passes
 * {@code t.expand(B).to(latents.dtype) / 1000} (so with bf16 latents: fp32 {@code σ·1000} → bf16 → ÷1000 in bf16) and
 * {@code guidance = full([B], scale, float32)}; the transformer multiplies both by 1000 in its compute dtype
 * ({@code FluxTransformer.timeTextEmbed}). The Euler step keeps the unrounded float32 sigmas.
 *
 * <p>Examples with bf16: timesteps 1000, 750, 500, 250 reach the sinusoid as 1000, 752, 500, 250; guidance 3.5 as 3504.
 */
public final class FluxTimesteps {
    private FluxTimesteps() {}

    /** Kept: it must outlive whatever scope is open when the class initialises. */
    private static final Scalar THOUSAND = Native.keep(new Scalar(1000L));

    /**
     * The {@code timestep} argument FluxPipeline gives the transformer at a step whose scheduler timestep is
     * {@code t} ({@link Schedule#timestep}): {@code [B]} in {@code latentsDtype}, {@code t.to(latentsDtype) / 1000}.
     * With float32 latents this is {@code fp32(t)/1000}, i.e. σ up to one float32 rounding. Owned by the caller.
     */
    public static Tensor pipelineTimestep(float t, long batch, DType latentsDtype) {
        checkBatch(batch);
        checkFloating(latentsDtype);
        try (PointerScope scope = new PointerScope()) {
            return Tensors.keep(timestepArgument(t, batch, latentsDtype));
        }
    }

    private static Tensor timestepArgument(float t, long batch, DType latentsDtype) {
        Tensor ts = full(new long[] {batch}, new Scalar((double) t), new TensorOptions(ScalarType.Float));
        return ts.to(latentsDtype.scalarType()).div(THOUSAND);
    }

    /** {@link #pipelineTimestep(float, long, DType)} for step {@code i} of {@code schedule}. */
    public static Tensor pipelineTimestep(Schedule schedule, int i, long batch, DType latentsDtype) {
        return pipelineTimestep(schedule.timestep(i), batch, latentsDtype);
    }

    /** The {@code guidance} argument of FLUX.1-dev: {@code full([B], scale, float32)}. Owned by the caller. */
    public static Tensor pipelineGuidance(double scale, long batch) {
        checkBatch(batch);
        if (!Double.isFinite(scale)) throw new IllegalArgumentException("guidance scale must be finite, got " + scale);
        try (PointerScope scope = new PointerScope()) {
            return Tensors.keep(guidanceArgument(scale, batch));
        }
    }

    private static Tensor guidanceArgument(double scale, long batch) {
        return full(new long[] {batch}, new Scalar(scale), new TensorOptions(ScalarType.Float));
    }

    /** What the transformer's sinusoid receives from an argument: {@code x.to(compute)·1000} (in {@code compute}), as floats. */
    public static float[] embedded(Tensor argument, DType compute) {
        checkFloating(compute);
        try (PointerScope scope = new PointerScope()) {
            return Tensors.toFloats(argument.to(compute.scalarType()).mul(THOUSAND));
        }
    }

    /** The timestep value that reaches the sinusoid for scheduler timestep {@code t}. */
    public static float modelTimestep(float t, DType latentsDtype, DType compute) {
        try (PointerScope scope = new PointerScope()) {
            checkFloating(latentsDtype);
            return embedded(timestepArgument(t, 1, latentsDtype), compute)[0];
        }
    }

    /** The guidance value that reaches the sinusoid for {@code guidance_scale = scale}. */
    public static float modelGuidance(double scale, DType compute) {
        try (PointerScope scope = new PointerScope()) {
            if (!Double.isFinite(scale)) throw new IllegalArgumentException("guidance scale must be finite, got " + scale);
            return embedded(guidanceArgument(scale, 1), compute)[0];
        }
    }

    private static void checkBatch(long batch) {
        if (batch < 1) throw new IllegalArgumentException("batch must be >= 1, got " + batch);
    }

    private static void checkFloating(DType d) {
        if (d == null || !d.isFloatingPoint()) throw new IllegalArgumentException("a floating dtype is required, got " + d);
    }
}
