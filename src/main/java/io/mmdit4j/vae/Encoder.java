package io.mmdit4j.vae;

import io.mmdit4j.io.StateDict;
import io.mmdit4j.nn.Modules;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Native;
import io.mmdit4j.runtime.Scopes;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static io.mmdit4j.nn.Modules.track;
import static org.bytedeco.pytorch.global.torch.constant_pad_nd;
import static org.bytedeco.pytorch.global.torch.silu;

/**
 * diffusers' VAE {@code Encoder}: {@code conv_in}; down blocks ({@code DownEncoderBlock2D}: {@code layers_per_block}
 * resnets, then, except in the last block, a {@link Downsample2D}); the mid block; {@code conv_norm_out}, SiLU,
 * {@code conv_out} to 2·latent channels (mean and log-variance).
 */
final class Encoder implements AutoCloseable {
    final Conv2d conv_in;
    final List<UpDownBlock> down_blocks;
    final MidBlock mid_block;
    final GroupNorm conv_norm_out;
    final Conv2d conv_out;

    /** {@code Downsample2D} ({@code downsamplers.0}): zero padding right and bottom by one, then a 3x3 stride-2 conv without padding. */
    static final class Downsample2D implements Block {
        private static final Scalar ZERO = Native.keep(new Scalar(0.0));
        private static final long[] PAD_RIGHT_BOTTOM = {0, 1, 0, 1};

        final Conv2d conv;

        private Downsample2D(Conv2d conv) {
            this.conv = conv;
        }

        static Downsample2D load(StateDict sd, String p, long channels, DType dtype) {
            return new Downsample2D(Conv2d.load(sd, p + "conv", channels, channels, 3, 2, 0, dtype));
        }

        @Override
        public Tensor forward(Tensor t) { // owned by the caller
            return Scopes.owned(() -> conv.forward(constant_pad_nd(t, PAD_RIGHT_BOTTOM, ZERO)));
        }

        @Override
        public void close() {
            conv.close();
        }
    }

    private Encoder(Conv2d convIn, List<UpDownBlock> downBlocks, MidBlock mid, GroupNorm normOut, Conv2d convOut) {
        this.conv_in = convIn;
        this.down_blocks = downBlocks;
        this.mid_block = mid;
        this.conv_norm_out = normOut;
        this.conv_out = convOut;
    }

    static Encoder load(StateDict sd, VaeConfig c, DType dtype) {
        long groups = c.normNumGroups(), top = c.topChannels();
        int n = c.numBlocks();
        return Modules.loading(built -> {
            Conv2d convIn = track(built, Conv2d.same(sd, "encoder.conv_in", c.inChannels(), c.channels(0), 3, dtype));
            List<UpDownBlock> blocks = new ArrayList<>();
            long out = c.channels(0);
            for (int i = 0; i < n; i++) {
                long in = out;
                out = c.channels(i);
                String p = "encoder.down_blocks." + i + ".";
                long channels = out;
                blocks.add(track(built, UpDownBlock.load(sd, p, in, out, c.layersPerBlock(), groups, VaeConfig.NORM_EPS, Conv2d::same,
                        i < n - 1 ? () -> Downsample2D.load(sd, p + "downsamplers.0.", channels, dtype) : null, dtype)));
            }
            MidBlock mid = track(built, MidBlock.load(sd, "encoder.mid_block.", top, groups, VaeConfig.NORM_EPS, Conv2d::same,
                    c.midBlockAddAttention() ? MidBlockAttention::load : null, dtype));
            GroupNorm normOut = track(built, GroupNorm.load(sd, "encoder.conv_norm_out", top, groups, VaeConfig.NORM_EPS, dtype));
            Conv2d convOut = track(built, Conv2d.same(sd, "encoder.conv_out", top, 2L * c.latentChannels(), 3, dtype));
            return new Encoder(convIn, List.copyOf(blocks), mid, normOut, convOut);
        });
    }

    /** {@code [B, in, H, W]} → moments {@code [B, 2·latent, ⌈H/f⌉, ⌈W/f⌉]}. */
    Tensor forward(Tensor x) { // owned by the caller
        Tensor h = Scopes.owned(() -> conv_in.forward(x));
        for (UpDownBlock b : down_blocks) h = Scopes.then(h, b::forward);
        h = Scopes.then(h, mid_block::forward);
        return Scopes.then(h, t -> Scopes.owned(() -> conv_out.forward(silu(conv_norm_out.forward(t)))));
    }

    @Override
    public void close() {
        Modules.closeAll(Arrays.asList(conv_in, mid_block, conv_norm_out, conv_out));
        Modules.closeAll(down_blocks);
    }
}
