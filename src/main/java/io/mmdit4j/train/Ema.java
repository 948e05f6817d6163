package io.mmdit4j.train;

import io.mmdit4j.runtime.Native;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Exponential moving average of the trainable weights, {@code e ← d·e + (1 − d)·p} after every optimizer step (no
 * gradients recorded), with diffusers' {@code EMAModel} warm-up of the decay, {@code d_t = min(decay, (1 + t)/(10 + t))}.
 * Owns its copies.
 */
public final class Ema implements AutoCloseable {
    private final Map<String, Tensor> shadow = new LinkedHashMap<>();
    private final double decay;

    public Ema(Map<String, Tensor> params, double decay) {
        if (!(decay > 0 && decay < 1)) throw new IllegalArgumentException("EMA decay must be in (0, 1), got " + decay);
        this.decay = decay;
        try (PointerScope scope = new PointerScope(); NoGradGuard ng = new NoGradGuard()) {
            params.forEach((k, p) -> shadow.put(k, Native.keep(p.detach().clone())));
        }
    }

    /** The decay used after optimizer step {@code step} (1-based). */
    public double decayAt(int step) {
        return Math.min(decay, (1.0 + step) / (10.0 + step));
    }

    public void update(Map<String, Tensor> params, int step) {
        double d = decayAt(step);
        try (PointerScope scope = new PointerScope(); NoGradGuard ng = new NoGradGuard()) {
            Scalar w = new Scalar(1.0 - d);
            params.forEach((k, p) -> shadow.get(k).lerp_(p.detach(), w));
        }
    }

    /** Replaces the averages with {@code values} (resume). */
    public void load(Map<String, Tensor> values) {
        try (PointerScope scope = new PointerScope(); NoGradGuard ng = new NoGradGuard()) {
            shadow.forEach((k, e) -> {
                Tensor v = values.get(k);
                if (v == null) throw new io.mmdit4j.io.ModelFormatException("EMA state lacks '" + k + "'");
                e.copy_(v);
            });
        }
    }

    public Map<String, Tensor> values() {
        return Collections.unmodifiableMap(shadow);
    }

    @Override
    public void close() {
        shadow.values().forEach(Native::release);
        shadow.clear();
    }
}
