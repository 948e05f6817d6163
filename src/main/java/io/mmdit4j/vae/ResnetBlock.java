package io.mmdit4j.vae;

import io.mmdit4j.io.StateDict;
import io.mmdit4j.nn.Modules;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;

import java.util.Arrays;

import static io.mmdit4j.nn.Modules.track;
import static org.bytedeco.pytorch.global.torch.silu_;

/**
 * diffusers {@code ResnetBlock2D} without a time embedding ({@code temb_channels=None}, output scale factor 1), and
 * {@code HunyuanVideoResnetBlockCausal3D}, which is the same block with 3×3×3 causal convs and GroupNorm over
 * (C, F, H, W): {@code out = shortcut(x) + conv2(SiLU(norm2(conv1(SiLU(norm1(x))))))}, the shortcut a 1x1 conv when
 * the channel count changes. Dropout is inactive at inference.
 */
public final class ResnetBlock implements Block {
    final GroupNorm norm1;
    final Conv conv1;
    final GroupNorm norm2;
    final Conv conv2;
    final Conv conv_shortcut; // null when in == out

    private ResnetBlock(GroupNorm norm1, Conv conv1, GroupNorm norm2, Conv conv2, Conv convShortcut) {
        this.norm1 = norm1;
        this.conv1 = conv1;
        this.norm2 = norm2;
        this.conv2 = conv2;
        this.conv_shortcut = convShortcut;
    }

    /** @param conv loads the 3x3 convs and the 1x1 shortcut ({@code Conv2d::same} or the causal 3-D conv) */
    public static ResnetBlock load(StateDict sd, String p, long in, long out, long groups, double eps, Conv.Loader conv, DType dtype) {
        return Modules.loading(built -> new ResnetBlock(track(built, GroupNorm.load(sd, p + "norm1", in, groups, eps, dtype)),
                track(built, conv.load(sd, p + "conv1", in, out, 3, dtype)), track(built, GroupNorm.load(sd, p + "norm2", out, groups, eps, dtype)),
                track(built, conv.load(sd, p + "conv2", out, out, 3, dtype)),
                in != out ? track(built, conv.load(sd, p + "conv_shortcut", in, out, 1, dtype)) : null));
    }

    /**
     * [B, in, ...] -> [B, out, ...], owned by the caller. Intermediates are freed as soon as they are used;
     * SiLU runs in place and the residual is added in place ({@code x + h} and {@code h + x} round the same).
     */
    @Override
    public Tensor forward(Tensor input) {
        try (PointerScope scope = new PointerScope()) {
            Tensor x = input.contiguous();
            Tensor h = norm1.forward(x);
            h = h.requires_grad() ? org.bytedeco.pytorch.global.torch.silu(h) : silu_(h); // in place unless autograd needs the input
            Tensor c = conv1.forward(h);
            h.close();
            h = norm2.forward(c);
            c.close();
            h = h.requires_grad() ? org.bytedeco.pytorch.global.torch.silu(h) : silu_(h); // in place unless autograd needs the input
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
