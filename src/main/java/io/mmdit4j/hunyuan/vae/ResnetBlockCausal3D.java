package io.mmdit4j.hunyuan.vae;

import io.mmdit4j.io.StateDict;
import io.mmdit4j.nn.Modules;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Tensors;
import io.mmdit4j.vae.GroupNorm;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;

import java.util.Arrays;

import static org.bytedeco.pytorch.global.torch.silu_;

/**
 * diffusers {@code HunyuanVideoResnetBlockCausal3D}:
 * {@code out = shortcut(x) + conv2(SiLU(norm2(conv1(SiLU(norm1(x))))))} with 3×3×3 causal convs, GroupNorm over
 * (C, F, H, W) per group, and a 1×1×1 causal conv as shortcut when the channel count changes. Dropout is inactive.
 */
final class ResnetBlockCausal3D implements AutoCloseable {
    final GroupNorm norm1;
    final CausalConv3d conv1;
    final GroupNorm norm2;
    final CausalConv3d conv2;
    final CausalConv3d conv_shortcut; // null when in == out

    private ResnetBlockCausal3D(GroupNorm norm1, CausalConv3d conv1, GroupNorm norm2, CausalConv3d conv2, CausalConv3d shortcut) {
        this.norm1 = norm1;
        this.conv1 = conv1;
        this.norm2 = norm2;
        this.conv2 = conv2;
        this.conv_shortcut = shortcut;
    }

    static ResnetBlockCausal3D load(StateDict sd, String p, long in, long out, long groups, DType dtype) {
        GroupNorm norm1 = null, norm2 = null;
        CausalConv3d conv1 = null, conv2 = null, shortcut = null;
        try {
            norm1 = GroupNorm.load(sd, p + "norm1", in, groups, HunyuanVideoVaeConfig.NORM_EPS, dtype);
            conv1 = CausalConv3d.load(sd, p + "conv1", in, out, 3, dtype);
            norm2 = GroupNorm.load(sd, p + "norm2", out, groups, HunyuanVideoVaeConfig.NORM_EPS, dtype);
            conv2 = CausalConv3d.load(sd, p + "conv2", out, out, 3, dtype);
            if (in != out) shortcut = CausalConv3d.load(sd, p + "conv_shortcut", in, out, 1, dtype);
            return new ResnetBlockCausal3D(norm1, conv1, norm2, conv2, shortcut);
        } catch (RuntimeException e) {
            Modules.closeAll(Arrays.asList(norm1, conv1, norm2, conv2, shortcut));
            throw e;
        }
    }

    /** {@code [B, in, F, H, W] -> [B, out, F, H, W]}, owned by the caller; temporaries are freed as soon as used. */
    Tensor forward(Tensor input) {
        try (PointerScope scope = new PointerScope()) {
            Tensor x = input.contiguous();
            Tensor h = norm1.forward(x);
            silu_(h);
            Tensor c = conv1.forward(h);
            h.close();
            h = norm2.forward(c);
            c.close();
            silu_(h);
            Tensor out = conv2.forward(h);
            h.close();
            if (conv_shortcut != null) {
                Tensor shortcut = conv_shortcut.forward(x);
                out.add_(shortcut);
                shortcut.close();
            } else {
                out.add_(x);
            }
            return Tensors.keep(out);
        }
    }

    @Override
    public void close() {
        Modules.closeAll(Arrays.asList(norm1, conv1, norm2, conv2, conv_shortcut));
    }
}
