package io.mmdit4j.vae;

import io.mmdit4j.io.StateDict;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Native;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;

import static org.bytedeco.pytorch.global.torch.empty_like;
import static org.bytedeco.pytorch.global.torch.group_norm;

/** {@code nn.GroupNorm(groups, channels, eps, affine=True)} over dimension 1 of {@code [B, C, ...]}. */
public final class GroupNorm implements AutoCloseable {
    final Tensor weight; // [C]
    final Tensor bias;   // [C]
    private final TensorOptional weightOption;
    private final TensorOptional biasOption;
    private final long groups;
    private final double eps;

    public GroupNorm(Tensor weight, Tensor bias, long groups, double eps) {
        this.weight = weight;
        this.bias = bias;
        this.groups = groups;
        this.eps = eps;
        this.weightOption = Native.keep(new TensorOptional(weight));
        this.biasOption = Native.keep(new TensorOptional(bias));
    }

    public static GroupNorm load(StateDict sd, String prefix, long channels, long groups, double eps, DType dtype) {
        Tensor w = sd.take(prefix + ".weight", dtype, channels);
        try {
            return new GroupNorm(w, sd.take(prefix + ".bias", dtype, channels), groups, eps);
        } catch (RuntimeException e) {
            Native.release(w);
            throw e;
        }
    }

    public Tensor forward(Tensor x) {
        if (x.is_meta()) return empty_like(x); // shapes-only dry runs: group_norm has no meta kernel (it lowers to batch_norm)
        return group_norm(x, groups, weightOption, biasOption, eps, true);
    }

    @Override
    public void close() {
        Native.release(weightOption);
        Native.release(biasOption);
        Native.release(weight);
        Native.release(bias);
    }
}
