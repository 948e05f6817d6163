package io.mmdit4j.hunyuan.vae;

import io.mmdit4j.io.StateDict;
import io.mmdit4j.nn.Modules;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Scopes;
import io.mmdit4j.vae.Block;
import io.mmdit4j.vae.GroupNorm;
import io.mmdit4j.vae.MidBlock;
import io.mmdit4j.vae.MidBlockAttention;
import io.mmdit4j.vae.ResnetBlock;
import io.mmdit4j.vae.VaeBlocks;
import org.bytedeco.pytorch.Tensor;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static io.mmdit4j.nn.Modules.track;
import static org.bytedeco.pytorch.global.torch.silu;

/**
 * diffusers {@code HunyuanVideoEncoder3D}: {@code conv_in} (3 → {@code block_out_channels[0]}, causal 3×3×3); down
 * blocks ({@code HunyuanVideoDownBlock3D}: {@code layers_per_block} causal resnets, the first from the previous block's
 * channels, then a {@link DownsampleCausal3D} where the block compresses space and/or time: space in the first
 * log2(8) = 3 blocks, time in the two blocks before the last); the mid block (resnet, frame-causal single-head attention,
 * resnet); {@code conv_norm_out}, SiLU, {@code conv_out} to 2·latent channels (the posterior's mean and log-variance).
 * Video {@code [B, 3, F, H, W]} → moments {@code [B, 2·latent, 1 + (F−1)/4, H/8, W/8]} (for F = 4k+1 and H, W multiples of 8).
 */
final class EncoderCausal3D implements AutoCloseable {
    final CausalConv3d conv_in;
    final List<DownBlock> down_blocks;
    final MidBlock mid_block;
    final GroupNorm conv_norm_out;
    final CausalConv3d conv_out;

    /** {@code HunyuanVideoDownBlock3D}: resnets, then the down-sampler where the block has one. */
    record DownBlock(List<ResnetBlock> resnets, DownsampleCausal3D downsampler) implements Block {
        static DownBlock load(StateDict sd, String p, HunyuanVideoVaeConfig c, int block, long in, long out, DType dtype) {
            return Modules.loading(built -> {
                List<ResnetBlock> resnets = new ArrayList<>();
                for (int j = 0; j < c.layersPerBlock(); j++) {
                    resnets.add(track(built, ResnetBlock.load(sd, p + "resnets." + j + ".", j == 0 ? in : out, out, c.normNumGroups(),
                            VaeBlocks.NORM_EPS, CausalConv3d::load, dtype)));
                }
                DownsampleCausal3D down = DownsampleCausal3D.load(sd, p + "downsamplers.0.", c, block, out, dtype);
                if (down != null) built.add(down);
                return new DownBlock(List.copyOf(resnets), down);
            });
        }

        @Override
        public Tensor forward(Tensor x) { // owned by the caller
            Tensor h = resnets.get(0).forward(x);
            for (int j = 1; j < resnets.size(); j++) h = Scopes.then(h, resnets.get(j)::forward);
            return downsampler == null ? h : Scopes.then(h, downsampler::forward);
        }

        @Override
        public void close() {
            Modules.closeAll(resnets);
            Modules.closeQuietly(downsampler);
        }
    }

    private EncoderCausal3D(CausalConv3d convIn, List<DownBlock> downBlocks, MidBlock mid, GroupNorm normOut, CausalConv3d convOut) {
        this.conv_in = convIn;
        this.down_blocks = downBlocks;
        this.mid_block = mid;
        this.conv_norm_out = normOut;
        this.conv_out = convOut;
    }

    /** Loads {@code encoder.*} of a VAE with config {@code c}. */
    static EncoderCausal3D load(StateDict sd, HunyuanVideoVaeConfig c, DType dtype) {
        long groups = c.normNumGroups(), top = c.topChannels();
        int n = c.numBlocks();
        return Modules.loading(built -> {
            CausalConv3d convIn = track(built, CausalConv3d.load(sd, "encoder.conv_in", c.inChannels(), c.channels(0), 3, dtype));
            List<DownBlock> blocks = new ArrayList<>();
            long out = c.channels(0);
            for (int i = 0; i < n; i++) {
                long in = out;
                out = c.channels(i);
                blocks.add(track(built, DownBlock.load(sd, "encoder.down_blocks." + i + ".", c, i, in, out, dtype)));
            }
            MidBlock mid = track(built, MidBlock.load(sd, "encoder.mid_block.", top, groups, VaeBlocks.NORM_EPS, CausalConv3d::load,
                    c.midBlockAddAttention() ? MidBlockAttention::loadCausal : null, dtype));
            GroupNorm normOut = track(built, GroupNorm.load(sd, "encoder.conv_norm_out", top, groups, VaeBlocks.NORM_EPS, dtype));
            CausalConv3d convOut = track(built, CausalConv3d.load(sd, "encoder.conv_out", top, 2L * c.latentChannels(), 3, dtype));
            return new EncoderCausal3D(convIn, List.copyOf(blocks), mid, normOut, convOut);
        });
    }

    /** Video {@code [B, in, F, H, W]} → moments {@code [B, 2·latent, F', H', W']}, owned by the caller. */
    Tensor forward(Tensor x) {
        Tensor h = Scopes.owned(() -> conv_in.forward(x));
        for (DownBlock b : down_blocks) h = Scopes.then(h, b::forward);
        h = Scopes.then(h, mid_block::forward);
        return Scopes.then(h, t -> Scopes.owned(() -> {
            Tensor a = silu(conv_norm_out.forward(t));
            Tensor y = conv_out.forward(a);
            a.close();
            return y;
        }));
    }

    @Override
    public void close() {
        Modules.closeAll(Arrays.asList(conv_in, mid_block, conv_norm_out, conv_out));
        Modules.closeAll(down_blocks);
    }
}
