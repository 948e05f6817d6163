package io.mmdit4j.runtime;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.GeneratorOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.TensorOptions;

import java.util.LinkedHashMap;
import java.util.Map;

import static org.bytedeco.pytorch.global.torch.createCPUGenerator;
import static org.bytedeco.pytorch.global.torch.linear;
import static org.bytedeco.pytorch.global.torch.matmul;
import static org.bytedeco.pytorch.global.torch.randn;

/**
 * The GEMM floor of a forward: each of its matrix multiplications (every linear with its exact shape and
 * bias, and the two matmuls of every attention) timed alone in this JVM with the same dtype and threads,
 * best of a few runs, summed over the forward. A forward can approach but hardly beat it; the ratio
 * forward/floor is the overhead of everything else (norms, RoPE, activations, copies, dispatch).
 */
public final class GemmFloor {
    private GemmFloor() {}

    /** The floor split into the linear layers and the attention matmuls, in seconds. */
    public record Split(double linearSeconds, double attentionSeconds) {
        public double seconds() { return linearSeconds + attentionSeconds; }
    }

    /** Seconds. */
    public static double seconds(OpCounter.Recording ops, int reps) {
        return split(ops, reps).seconds();
    }

    public static Split split(OpCounter.Recording ops, int reps) {
        return split(ops, reps, DeviceSpec.CPU);
    }

    /**
     * The floor on {@code device}: the GEMMs run there (uninitialised inputs off the CPU: values do not change a GEMM's
     * time) and are timed on its {@link DeviceTimer} (CUDA events on CUDA: never run here; on meta the floor is ~0).
     */
    public static Split split(OpCounter.Recording ops, int reps, DeviceSpec device) {
        Map<OpCounter.LinearCall, Integer> linears = new LinkedHashMap<>();
        ops.linears().forEach(l -> linears.merge(l, 1, Integer::sum));
        Map<OpCounter.AttentionCall, Integer> attentions = new LinkedHashMap<>();
        ops.attentions().forEach(a -> attentions.merge(a, 1, Integer::sum));
        double lin = 0, att = 0;
        DeviceTimer timer = DeviceTimer.of(device);
        for (Map.Entry<OpCounter.LinearCall, Integer> e : linears.entrySet()) lin += e.getValue() * linearSeconds(e.getKey(), reps, device, timer);
        for (Map.Entry<OpCounter.AttentionCall, Integer> e : attentions.entrySet()) att += e.getValue() * attentionSeconds(e.getKey(), reps, device, timer);
        return new Split(lin, att);
    }

    static double linearSeconds(OpCounter.LinearCall l, int reps, DeviceSpec device, DeviceTimer timer) {
        try (PointerScope scope = new PointerScope()) {
            GeneratorOptional gen = new GeneratorOptional(createCPUGenerator(0));
            TensorOptions o = new TensorOptions(l.dtype().scalarType());
            Tensor x = input(gen, o, device, l.m(), l.k()), w = input(gen, o, device, l.n(), l.k()), b = input(gen, o, device, l.n());
            TensorOptional bias = new TensorOptional(b);
            return best(reps, timer, () -> linear(x, w, bias));
        }
    }

    static double attentionSeconds(OpCounter.AttentionCall a, int reps, DeviceSpec device, DeviceTimer timer) {
        try (PointerScope scope = new PointerScope()) {
            GeneratorOptional gen = new GeneratorOptional(createCPUGenerator(0));
            TensorOptions o = new TensorOptions(a.dtype().scalarType());
            Tensor q = input(gen, o, device, a.b(), a.h(), a.sq(), a.d());
            Tensor kt = input(gen, o, device, a.b(), a.h(), a.d(), a.sk());
            Tensor p = input(gen, o, device, a.b(), a.h(), a.sq(), a.sk());
            Tensor v = input(gen, o, device, a.b(), a.h(), a.sk(), a.d());
            return best(reps, timer, () -> matmul(q, kt)) + best(reps, timer, () -> matmul(p, v));
        }
    }

    /** Seeded values on the CPU (the floor measured so far), an uninitialised tensor elsewhere (no host copy). */
    private static Tensor input(GeneratorOptional gen, TensorOptions o, DeviceSpec device, long... shape) {
        if (device.isCpu()) return randn(shape, gen, o);
        return org.bytedeco.pytorch.global.torch.empty(shape, o.device(new org.bytedeco.pytorch.DeviceOptional(device.torchDevice())),
                new org.bytedeco.pytorch.MemoryFormatOptional());
    }

    private static double best(int reps, DeviceTimer timer, java.util.function.Supplier<Tensor> op) {
        op.get().close(); // warm-up
        long best = Long.MAX_VALUE;
        for (int i = 0; i < Math.max(1, reps); i++) {
            best = Math.min(best, timer.time(() -> op.get().close()));
        }
        return best / 1e9;
    }
}
