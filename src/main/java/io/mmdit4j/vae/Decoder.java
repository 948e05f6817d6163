package io.mmdit4j.vae;

import io.mmdit4j.runtime.Scopes;
import io.mmdit4j.io.StateDict;
import io.mmdit4j.nn.Modules;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Native;
import org.bytedeco.pytorch.DoubleOptional;
import org.bytedeco.pytorch.Tensor;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static io.mmdit4j.nn.Modules.track;
import static org.bytedeco.pytorch.global.torch.silu;
import static org.bytedeco.pytorch.global.torch.upsample_nearest2d;

/**
 * diffusers' VAE {@code Decoder}: {@code conv_in}; the mid block; up blocks in reversed channel order
 * ({@code UpDecoderBlock2D}: {@code layers_per_block + 1} resnets, then, except in the last block, nearest-neighbour
 * 2x upsampling and a 3x3 conv); {@code conv_norm_out}, SiLU, {@code conv_out}.
 */
final class Decoder implements AutoCloseable {
    private static final DoubleOptional NO_SCALE = Native.keep(new DoubleOptional());

    final Conv2d conv_in;
    final MidBlock mid_block;
    final List<UpBlock> up_blocks;
    final GroupNorm conv_norm_out;
    final Conv2d conv_out;

    /** {@code UpDecoderBlock2D}. */
    static final class UpBlock implements AutoCloseable {
        final List<ResnetBlock> resnets;
        final Conv2d upsamplers_0_conv; // null in the last block

        UpBlock(List<ResnetBlock> resnets, Conv2d upsampler) {
            this.resnets = resnets;
            this.upsamplers_0_conv = upsampler;
        }

        Tensor forward(Tensor x) { // owned by the caller
            Tensor h = resnets.get(0).forward(x);
            for (int j = 1; j < resnets.size(); j++) h = Scopes.then(h, resnets.get(j)::forward);
            if (upsamplers_0_conv != null) {
                // F.interpolate(scale_factor=2, mode="nearest"); diffusers' bf16 round trip through fp32 is exact here
                h = Scopes.then(h, t -> Scopes.owned(() -> upsamplers_0_conv.forward(
                        upsample_nearest2d(t, new long[] {2 * t.size(2), 2 * t.size(3)}, NO_SCALE, NO_SCALE))));
            }
            return h;
        }

        @Override
        public void close() {
            Modules.closeAll(resnets);
            Modules.closeQuietly(upsamplers_0_conv);
        }
    }

    private Decoder(Conv2d convIn, MidBlock mid, List<UpBlock> upBlocks, GroupNorm normOut, Conv2d convOut) {
        this.conv_in = convIn;
        this.mid_block = mid;
        this.up_blocks = upBlocks;
        this.conv_norm_out = normOut;
        this.conv_out = convOut;
    }

    static Decoder load(StateDict sd, VaeConfig c, DType dtype) {
        List<AutoCloseable> built = new ArrayList<>();
        long groups = c.normNumGroups();
        int n = c.numBlocks();
        try {
            Conv2d convIn = track(built, Conv2d.load(sd, "decoder.conv_in", c.latentChannels(), c.topChannels(), 3, 1, 1, dtype));
            MidBlock mid = track(built, MidBlock.load(sd, "decoder.mid_block.", c.topChannels(), groups, VaeConfig.NORM_EPS, Conv2d::same,
                    c.midBlockAddAttention() ? MidBlockAttention::load : null, dtype));
            List<UpBlock> blocks = new ArrayList<>();
            long out = c.channels(n - 1);
            for (int i = 0; i < n; i++) {
                long in = out;
                out = c.channels(n - 1 - i);
                String p = "decoder.up_blocks." + i + ".";
                List<ResnetBlock> resnets = new ArrayList<>();
                for (int j = 0; j < c.layersPerBlock() + 1; j++) {
                    resnets.add(track(built, ResnetBlock.load(sd, p + "resnets." + j + ".", j == 0 ? in : out, out, groups, VaeConfig.NORM_EPS, Conv2d::same, dtype)));
                }
                Conv2d up = i < n - 1 ? track(built, Conv2d.load(sd, p + "upsamplers.0.conv", out, out, 3, 1, 1, dtype)) : null;
                blocks.add(new UpBlock(List.copyOf(resnets), up));
            }
            GroupNorm normOut = track(built, GroupNorm.load(sd, "decoder.conv_norm_out", c.channels(0), groups, VaeConfig.NORM_EPS, dtype));
            Conv2d convOut = track(built, Conv2d.load(sd, "decoder.conv_out", c.channels(0), c.outChannels(), 3, 1, 1, dtype));
            return new Decoder(convIn, mid, List.copyOf(blocks), normOut, convOut);
        } catch (RuntimeException e) {
            Modules.closeAll(built);
            throw e;
        }
    }

    /** {@code z [B, latent, h, w]} → {@code [B, out, f·h, f·w]}. */
    Tensor forward(Tensor z) { // owned by the caller
        Tensor h = Scopes.owned(() -> conv_in.forward(z));
        h = Scopes.then(h, mid_block::forward);
        for (UpBlock b : up_blocks) h = Scopes.then(h, b::forward);
        return Scopes.then(h, t -> Scopes.owned(() -> conv_out.forward(silu(conv_norm_out.forward(t)))));
    }

    @Override
    public void close() {
        Modules.closeAll(Arrays.asList(conv_in, mid_block, conv_norm_out, conv_out));
        Modules.closeAll(up_blocks);
    }
}
