package io.mmdit4j.vae;

import io.mmdit4j.runtime.Scopes;
import io.mmdit4j.io.StateDict;
import io.mmdit4j.nn.Modules;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Native;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.bytedeco.pytorch.global.torch.constant_pad_nd;
import static org.bytedeco.pytorch.global.torch.silu;

/**
 * diffusers' VAE {@code Encoder}: {@code conv_in}; down blocks ({@code DownEncoderBlock2D}: {@code layers_per_block}
 * resnets, then, except in the last block, a downsampler that zero-pads right and bottom by one and applies a
 * 3x3 stride-2 conv without padding); the mid block; {@code conv_norm_out}, SiLU, {@code conv_out} to
 * 2·latent channels (mean and log-variance).
 */
final class Encoder implements AutoCloseable {
    private static final Scalar ZERO = Native.keep(new Scalar(0.0));
    private static final long[] PAD_RIGHT_BOTTOM = {0, 1, 0, 1};

    final Conv2d conv_in;
    final List<DownBlock> down_blocks;
    final MidBlock mid_block;
    final GroupNorm conv_norm_out;
    final Conv2d conv_out;

    /** {@code DownEncoderBlock2D}. */
    static final class DownBlock implements AutoCloseable {
        final List<ResnetBlock> resnets;
        final Conv2d downsamplers_0_conv; // null in the last block

        DownBlock(List<ResnetBlock> resnets, Conv2d downsampler) {
            this.resnets = resnets;
            this.downsamplers_0_conv = downsampler;
        }

        Tensor forward(Tensor x) { // owned by the caller
            Tensor h = resnets.get(0).forward(x);
            for (int j = 1; j < resnets.size(); j++) h = Scopes.then(h, resnets.get(j)::forward);
            if (downsamplers_0_conv != null) {
                h = Scopes.then(h, t -> Scopes.owned(() -> downsamplers_0_conv.forward(constant_pad_nd(t, PAD_RIGHT_BOTTOM, ZERO))));
            }
            return h;
        }

        @Override
        public void close() {
            Modules.closeAll(resnets);
            Modules.closeQuietly(downsamplers_0_conv);
        }
    }

    private Encoder(Conv2d convIn, List<DownBlock> downBlocks, MidBlock mid, GroupNorm normOut, Conv2d convOut) {
        this.conv_in = convIn;
        this.down_blocks = downBlocks;
        this.mid_block = mid;
        this.conv_norm_out = normOut;
        this.conv_out = convOut;
    }

    static Encoder load(StateDict sd, VaeConfig c, DType dtype) {
        List<AutoCloseable> built = new ArrayList<>();
        long groups = c.normNumGroups();
        try {
            Conv2d convIn = Modules.track(built, Conv2d.load(sd, "encoder.conv_in", c.inChannels(), c.channels(0), 3, 1, 1, dtype));
            List<DownBlock> blocks = new ArrayList<>();
            long out = c.channels(0);
            for (int i = 0; i < c.numBlocks(); i++) {
                long in = out;
                out = c.channels(i);
                String p = "encoder.down_blocks." + i + ".";
                List<ResnetBlock> resnets = new ArrayList<>();
                for (int j = 0; j < c.layersPerBlock(); j++) {
                    resnets.add(Modules.track(built, ResnetBlock.load(sd, p + "resnets." + j + ".", j == 0 ? in : out, out, groups, VaeConfig.NORM_EPS, Conv2d::same, dtype)));
                }
                Conv2d down = i < c.numBlocks() - 1
                        ? Modules.track(built, Conv2d.load(sd, p + "downsamplers.0.conv", out, out, 3, 2, 0, dtype)) : null;
                blocks.add(new DownBlock(List.copyOf(resnets), down));
            }
            MidBlock mid = Modules.track(built, MidBlock.load(sd, "encoder.mid_block.", c.topChannels(), groups, VaeConfig.NORM_EPS, Conv2d::same,
                    c.midBlockAddAttention() ? MidBlockAttention::load : null, dtype));
            GroupNorm normOut = Modules.track(built, GroupNorm.load(sd, "encoder.conv_norm_out", c.topChannels(), groups, VaeConfig.NORM_EPS, dtype));
            Conv2d convOut = Modules.track(built, Conv2d.load(sd, "encoder.conv_out", c.topChannels(), 2L * c.latentChannels(), 3, 1, 1, dtype));
            return new Encoder(convIn, List.copyOf(blocks), mid, normOut, convOut);
        } catch (RuntimeException e) {
            Modules.closeAll(built);
            throw e;
        }
    }


    /** {@code [B, in, H, W]} → moments {@code [B, 2·latent, ⌈H/f⌉, ⌈W/f⌉]}. */
    Tensor forward(Tensor x) { // owned by the caller
        Tensor h = Scopes.owned(() -> conv_in.forward(x));
        for (DownBlock b : down_blocks) h = Scopes.then(h, b::forward);
        h = Scopes.then(h, mid_block::forward);
        return Scopes.then(h, t -> Scopes.owned(() -> conv_out.forward(silu(conv_norm_out.forward(t)))));
    }

    @Override
    public void close() {
        Modules.closeAll(Arrays.asList(conv_in, mid_block, conv_norm_out, conv_out));
        Modules.closeAll(down_blocks);
    }
}
