package io.mmdit4j.nn;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A model's {@link Linear} modules under their diffusers names ({@code transformer_blocks.0.attn.to_q}, without
 * {@code .weight}), for code that edits weights in place of a reload (LoRA merging). Models list their modules with
 * the {@code add} overloads, which know the Linears inside each shared module; null (absent) modules are skipped.
 */
public final class NamedLinears {
    private final Map<String, Linear> linears = new LinkedHashMap<>();

    public NamedLinears add(String name, Linear l) {
        if (l != null && linears.putIfAbsent(name, l) != null) throw new IllegalStateException("two Linears named '" + name + "'");
        return this;
    }

    public NamedLinears add(String prefix, MlpEmbedder m) {
        return m == null ? this : add(prefix + ".linear_1", m.linear_1).add(prefix + ".linear_2", m.linear_2);
    }

    public NamedLinears add(String prefix, FeedForward f) {
        return f == null ? this : add(prefix + ".net.0.proj", f.net_0_proj).add(prefix + ".net.2", f.net_2);
    }

    public NamedLinears add(String prefix, AdaLayerNormZero n) {
        return n == null ? this : add(prefix + ".linear", n.linear);
    }

    public NamedLinears add(String prefix, AdaLayerNormContinuous n) {
        return n == null ? this : add(prefix + ".linear", n.linear);
    }

    public NamedLinears add(String prefix, JointAttention a) {
        if (a == null) return this;
        return add(prefix + ".to_q", a.to_q).add(prefix + ".to_k", a.to_k).add(prefix + ".to_v", a.to_v)
                .add(prefix + ".add_q_proj", a.add_q_proj).add(prefix + ".add_k_proj", a.add_k_proj).add(prefix + ".add_v_proj", a.add_v_proj)
                .add(prefix + ".to_out.0", a.to_out_0).add(prefix + ".to_add_out", a.to_add_out);
    }

    public NamedLinears add(String prefix, SelfAttention a) {
        return a == null ? this : add(prefix + ".to_q", a.to_q).add(prefix + ".to_k", a.to_k).add(prefix + ".to_v", a.to_v)
                .add(prefix + ".to_out.0", a.to_out_0);
    }

    /** The collected Linears in the order they were added (unmodifiable). */
    public Map<String, Linear> map() {
        return Collections.unmodifiableMap(new LinkedHashMap<>(linears));
    }
}
