package io.mmdit4j.vae.wan;

import io.mmdit4j.io.StateDict;
import io.mmdit4j.nn.Modules;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Scopes;
import org.bytedeco.pytorch.Tensor;

import java.util.ArrayList;
import java.util.List;

import static org.bytedeco.pytorch.global.torch.silu;

/**
 * diffusers {@code WanEncoder3d} (Wan 2.1, {@code is_residual=False}, no attention in the down blocks): {@code conv_in} →
 * {@code down_blocks} (a flat list: per stage {@code num_res_blocks} residual blocks, then, but in the last stage, a
 * downsampler that halves H and W, and time in the stages {@code temperal_downsample} marks) → mid block (resnet,
 * attention, resnet) → RMS norm, SiLU, {@code conv_out} to {@code 2·z_dim} channels (mean and log-variance). Runs one
 * chunk at a time (the first frame, then 4 frames) with its {@link FeatureCache}.
 */
final class WanEncoder3d implements AutoCloseable {
    /** The video channels the encoder reads (diffusers' default {@code in_channels}). */
    static final int IN_CHANNELS = 3;

    final WanCausalConv3d conv_in;
    final List<WanBlocks.Cached> down_blocks;
    final WanBlocks.ResidualBlock mid0, mid1;
    final WanBlocks.AttentionBlock midAttention;
    final WanBlocks.RmsNorm norm_out;
    final WanCausalConv3d conv_out;

    WanEncoder3d(StateDict sd, WanVaeConfig c, DType dtype) {
        List<AutoCloseable> built = new ArrayList<>();
        try {
            int[] mult = c.dimMult();
            int n = mult.length;
            long[] dims = new long[n + 1]; // dim · [1] + dim_mult
            dims[0] = c.baseDim();
            for (int i = 0; i < n; i++) dims[i + 1] = (long) c.baseDim() * mult[i];
            conv_in = Modules.track(built, WanCausalConv3d.load(sd, "encoder.conv_in", IN_CHANNELS, dims[0], 3, 3, dtype));
            down_blocks = new ArrayList<>();
            int index = 0;
            for (int i = 0; i < n; i++) {
                long in = dims[i], out = dims[i + 1];
                for (int j = 0; j < c.numResBlocks(); j++) {
                    down_blocks.add(Modules.track(built, new WanBlocks.ResidualBlock(sd, "encoder.down_blocks." + index++, in, out, dtype)));
                    in = out;
                }
                if (i != n - 1) {
                    down_blocks.add(Modules.track(built, new WanBlocks.Downsample(sd, "encoder.down_blocks." + index++, out,
                            c.temperalDownsample()[i], dtype)));
                }
            }
            long top = dims[n];
            mid0 = Modules.track(built, new WanBlocks.ResidualBlock(sd, "encoder.mid_block.resnets.0", top, top, dtype));
            midAttention = Modules.track(built, new WanBlocks.AttentionBlock(sd, "encoder.mid_block.attentions.0", top, dtype));
            mid1 = Modules.track(built, new WanBlocks.ResidualBlock(sd, "encoder.mid_block.resnets.1", top, top, dtype));
            norm_out = Modules.track(built, new WanBlocks.RmsNorm(sd, "encoder.norm_out", top, false, dtype));
            conv_out = Modules.track(built, WanCausalConv3d.load(sd, "encoder.conv_out", top, 2L * c.zDim(), 3, 3, dtype));
        } catch (RuntimeException e) {
            Modules.closeAll(built);
            throw e;
        }
    }

    /** One chunk {@code [B, 3, T, H, W]} → its moments {@code [B, 2z, T', H/8, W/8]}; owned result, x not consumed. */
    Tensor forward(Tensor x, FeatureCache cache) {
        Tensor h = Scopes.owned(() -> WanBlocks.cachedConv(conv_in, x, cache));
        for (WanBlocks.Cached b : down_blocks) h = Scopes.then(h, t -> b.forward(t, cache));
        h = Scopes.then(h, t -> mid0.forward(t, cache));
        h = Scopes.then(h, midAttention::forward);
        h = Scopes.then(h, t -> mid1.forward(t, cache));
        return Scopes.then(h, t -> Scopes.owned(() -> WanBlocks.cachedConv(conv_out, silu(norm_out.forward(t)), cache)));
    }

    @Override
    public void close() {
        Modules.closeAll(conv_in, mid0, midAttention, mid1, norm_out, conv_out);
        Modules.closeAll(down_blocks);
    }
}
