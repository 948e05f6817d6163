package io.mmdit4j.vae;

import io.mmdit4j.io.StateDict;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Native;
import io.mmdit4j.runtime.Scopes;
import org.bytedeco.pytorch.DoubleOptional;
import org.bytedeco.pytorch.Tensor;

import static org.bytedeco.pytorch.global.torch.upsample_nearest2d;

/** AutoencoderKL's {@code Upsample2D} ({@code upsamplers.0}): nearest-neighbour 2x up-sampling, then a 3x3 conv. */
final class Upsample2D implements Block {
    private static final DoubleOptional NO_SCALE = Native.keep(new DoubleOptional());

    final Conv2d conv;

    private Upsample2D(Conv2d conv) {
        this.conv = conv;
    }

    static Upsample2D load(StateDict sd, String p, long channels, DType dtype) {
        return new Upsample2D(Conv2d.same(sd, p + "conv", channels, channels, 3, dtype));
    }

    @Override
    public Tensor forward(Tensor t) { // [B, C, H, W] -> [B, C, 2H, 2W], owned by the caller
        // F.interpolate(scale_factor=2, mode="nearest"); diffusers' bf16 round trip through fp32 is exact here
        return Scopes.owned(() -> conv.forward(upsample_nearest2d(t, new long[] {2 * t.size(2), 2 * t.size(3)}, NO_SCALE, NO_SCALE)));
    }

    @Override
    public void close() {
        conv.close();
    }
}
