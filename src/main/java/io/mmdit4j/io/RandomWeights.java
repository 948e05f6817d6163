package io.mmdit4j.io;

import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Tensors;
import io.mmdit4j.runtime.Torch;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Generator;
import org.bytedeco.pytorch.GeneratorOptional;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.util.LinkedHashMap;
import java.util.Map;

import static org.bytedeco.pytorch.global.torch.createCPUGenerator;
import static org.bytedeco.pytorch.global.torch.randn;

/**
 * Deterministic random weights for a parameter list (demo models, benchmarks at real widths, tests): one
 * seeded CPU generator walks the parameters in order. Matrices get {@code N(0, 1/in)} so activations stay
 * O(1) at any width, biases {@code N(0, 0.02²)}, 1-D norm scales {@code 1 + N(0, 0.1²)}.
 */
public final class RandomWeights {
    private RandomWeights() {}

    /** The tensors, owned by the caller (close each, e.g. with {@link Tensors#closeAll}). */
    public static Map<String, Tensor> generate(Map<String, long[]> shapes, long seed, DType dtype) {
        Torch.init();
        Map<String, Tensor> out = new LinkedHashMap<>();
        try (PointerScope scope = new PointerScope()) {
            Generator g = createCPUGenerator(seed);
            GeneratorOptional gen = new GeneratorOptional(g);
            TensorOptions f32 = new TensorOptions(ScalarType.Float);
            for (Map.Entry<String, long[]> e : shapes.entrySet()) {
                long[] shape = e.getValue();
                Tensor t = randn(shape, gen, f32);
                String name = e.getKey();
                if (shape.length >= 2) {
                    t = t.mul(new Scalar(1.0 / Math.sqrt(shape[1])));
                } else if (name.endsWith(".weight")) {
                    t = t.mul(new Scalar(0.1)).add(new Scalar(1.0));
                } else {
                    t = t.mul(new Scalar(0.02));
                }
                out.put(name, Tensors.keep(t.to(dtype.scalarType()).contiguous()));
            }
        }
        return out;
    }

    /** In-memory tensors as a StateDict (each load is a new handle on the same storage). */
    public static StateDict asStateDict(String origin, Map<String, Tensor> tensors) {
        Map<String, StateDict.Entry> entries = new LinkedHashMap<>();
        tensors.forEach((k, t) -> {
            long[] shape = Tensors.shape(t);
            entries.put(k, new StateDict.Entry(shape, Tensors.dtype(t), k, () -> t.view(shape)));
        });
        return new StateDict(origin, entries);
    }
}
