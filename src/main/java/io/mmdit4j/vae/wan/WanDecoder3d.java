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
 * diffusers {@code WanDecoder3d} (Wan 2.1, {@code is_residual=False}): {@code conv_in} → mid block (resnet, attention, resnet)
 * → up blocks (each {@code num_res_blocks + 1} resnets and, but the last, an upsampler that halves the channels and doubles
 * H, W, and time in the stages {@code temperal_downsample} reversed marks) → RMS norm, SiLU, {@code conv_out}. Runs one
 * latent frame at a time with its {@link FeatureCache}.
 */
final class WanDecoder3d implements AutoCloseable {
    final WanCausalConv3d conv_in;
    final WanBlocks.ResidualBlock mid0, mid1;
    final WanBlocks.AttentionBlock midAttention;
    final List<List<WanBlocks.ResidualBlock>> upResnets;
    final List<WanBlocks.Upsample> upsamplers; // null entries: no upsampler
    final WanBlocks.RmsNorm norm_out;
    final WanCausalConv3d conv_out;

    WanDecoder3d(StateDict sd, WanVaeConfig c, DType dtype) {
        List<AutoCloseable> built = new ArrayList<>();
        try {
            int[] mult = c.dimMult();
            int n = mult.length;
            long[] dims = new long[n + 1];
            dims[0] = (long) c.decoderBaseDim() * mult[n - 1];
            for (int i = 0; i < n; i++) dims[i + 1] = (long) c.decoderBaseDim() * mult[n - 1 - i];
            boolean[] temporalUp = new boolean[c.temperalDownsample().length];
            for (int i = 0; i < temporalUp.length; i++) temporalUp[i] = c.temperalDownsample()[temporalUp.length - 1 - i];
            conv_in = Modules.track(built, WanCausalConv3d.load(sd, "decoder.conv_in", c.zDim(), dims[0], 3, 3, dtype));
            mid0 = Modules.track(built, new WanBlocks.ResidualBlock(sd, "decoder.mid_block.resnets.0", dims[0], dims[0], dtype));
            midAttention = Modules.track(built, new WanBlocks.AttentionBlock(sd, "decoder.mid_block.attentions.0", dims[0], dtype));
            mid1 = Modules.track(built, new WanBlocks.ResidualBlock(sd, "decoder.mid_block.resnets.1", dims[0], dims[0], dtype));
            upResnets = new ArrayList<>();
            upsamplers = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                long in = i > 0 ? dims[i] / 2 : dims[i], out = dims[i + 1];
                List<WanBlocks.ResidualBlock> resnets = new ArrayList<>();
                long cur = in;
                for (int j = 0; j < c.numResBlocks() + 1; j++) {
                    resnets.add(Modules.track(built, new WanBlocks.ResidualBlock(sd, "decoder.up_blocks." + i + ".resnets." + j, cur, out, dtype)));
                    cur = out;
                }
                upResnets.add(resnets);
                boolean up = i != n - 1;
                upsamplers.add(up ? Modules.track(built, new WanBlocks.Upsample(sd, "decoder.up_blocks." + i + ".upsamplers.0", out, out / 2,
                        temporalUp[i], dtype)) : null);
            }
            norm_out = Modules.track(built, new WanBlocks.RmsNorm(sd, "decoder.norm_out", dims[n], false, dtype));
            conv_out = Modules.track(built, WanCausalConv3d.load(sd, "decoder.conv_out", dims[n], c.outChannels(), 3, 3, dtype));
        } catch (RuntimeException e) {
            Modules.closeAll(built);
            throw e;
        }
    }

    /** One latent frame (or chunk) {@code [B, z, T, h, w]} → decoded frames; owned result, x not consumed. */
    Tensor forward(Tensor x, FeatureCache cache, java.util.function.BiConsumer<String, Tensor> observer) {
        Tensor h = Scopes.owned(() -> WanBlocks.cachedConv(conv_in, x, cache));
        h = Scopes.then(h, t -> mid0.forward(t, cache));
        h = Scopes.then(h, midAttention::forward);
        h = Scopes.then(h, t -> mid1.forward(t, cache));
        if (observer != null) observer.accept("decoder_mid_block_out", h);
        for (int i = 0; i < upResnets.size(); i++) {
            for (WanBlocks.ResidualBlock r : upResnets.get(i)) h = Scopes.then(h, t -> r.forward(t, cache));
            WanBlocks.Upsample u = upsamplers.get(i);
            if (u != null) h = Scopes.then(h, t -> u.forward(t, cache));
        }
        return Scopes.then(h, t -> Scopes.owned(() -> WanBlocks.cachedConv(conv_out, silu(norm_out.forward(t)), cache)));
    }

    @Override
    public void close() {
        Modules.closeAll(conv_in, mid0, midAttention, mid1, norm_out, conv_out);
        upResnets.forEach(Modules::closeAll);
        Modules.closeAll(upsamplers);
    }
}
