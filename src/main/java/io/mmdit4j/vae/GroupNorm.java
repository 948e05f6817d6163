package io.mmdit4j.vae;

import io.mmdit4j.io.StateDict;
import io.mmdit4j.nn.AffineNorm;
import io.mmdit4j.nn.Modules;
import io.mmdit4j.runtime.DType;
import org.bytedeco.pytorch.Tensor;

import static org.bytedeco.pytorch.global.torch.empty_like;
import static org.bytedeco.pytorch.global.torch.group_norm;

/** {@code nn.GroupNorm(groups, channels, eps, affine=True)} over dimension 1 of {@code [B, C, ...]}. */
public final class GroupNorm extends AffineNorm {
    private final long groups;

    public GroupNorm(Tensor weight, Tensor bias, long groups, double eps) {
        super(weight, bias, eps);
        this.groups = groups;
    }

    public static GroupNorm load(StateDict sd, String prefix, long channels, long groups, double eps, DType dtype) {
        return Modules.weightAndBias(sd, prefix, dtype, (w, b) -> new GroupNorm(w, b, groups, eps), channels);
    }

    @Override
    public Tensor forward(Tensor x) {
        io.mmdit4j.runtime.Placement.require("group_norm", x);
        if (x.is_meta()) return empty_like(x); // shapes-only dry runs: group_norm has no meta kernel (it lowers to batch_norm)
        return group_norm(x, groups, weightOption, biasOption, eps, true);
    }
}
