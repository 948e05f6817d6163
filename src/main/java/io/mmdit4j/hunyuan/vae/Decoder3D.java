package io.mmdit4j.hunyuan.vae;

import io.mmdit4j.io.StateDict;
import io.mmdit4j.nn.Modules;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.vae.GroupNorm;
import io.mmdit4j.vae.MidBlock;
import io.mmdit4j.vae.ResnetBlock;
import io.mmdit4j.runtime.Scopes;
import org.bytedeco.pytorch.Tensor;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.bytedeco.pytorch.global.torch.silu;

/**
 * diffusers {@code HunyuanVideoDecoder3D}: causal {@code conv_in} (latent → top channels), mid block, up blocks in
 * reversed channel order ({@code layers_per_block + 1} resnets each, then an {@link UpsampleCausal3D} where the
 * config asks for spatial and/or temporal up-sampling), {@code conv_norm_out}, SiLU, causal {@code conv_out}.
 */
final class Decoder3D implements AutoCloseable {
    final CausalConv3d conv_in;
    final MidBlock mid_block;
    final List<UpBlock> up_blocks;
    final GroupNorm conv_norm_out;
    final CausalConv3d conv_out;

    /** {@code HunyuanVideoUpBlock3D}. */
    static final class UpBlock implements AutoCloseable {
        final List<ResnetBlock> resnets;
        final UpsampleCausal3D upsamplers_0; // null without up-sampling (the last block)

        UpBlock(List<ResnetBlock> resnets, UpsampleCausal3D upsampler) {
            this.resnets = resnets;
            this.upsamplers_0 = upsampler;
        }

        Tensor forward(Tensor x) { // owned by the caller
            Tensor h = resnets.get(0).forward(x);
            for (int j = 1; j < resnets.size(); j++) h = Scopes.then(h, resnets.get(j)::forward);
            return upsamplers_0 == null ? h : Scopes.then(h, upsamplers_0::forward);
        }

        @Override
        public void close() {
            Modules.closeAll(resnets);
            Modules.closeQuietly(upsamplers_0);
        }
    }

    private Decoder3D(CausalConv3d convIn, MidBlock mid, List<UpBlock> upBlocks, GroupNorm normOut, CausalConv3d convOut) {
        this.conv_in = convIn;
        this.mid_block = mid;
        this.up_blocks = upBlocks;
        this.conv_norm_out = normOut;
        this.conv_out = convOut;
    }

    static Decoder3D load(StateDict sd, HunyuanVideoVaeConfig c, DType dtype) {
        List<AutoCloseable> built = new ArrayList<>();
        long groups = c.normNumGroups();
        int n = c.numBlocks();
        try {
            CausalConv3d convIn = Modules.track(built, CausalConv3d.load(sd, "decoder.conv_in", c.latentChannels(), c.topChannels(), 3, dtype));
            MidBlock mid = Modules.track(built, MidBlock.load(sd, "decoder.mid_block.", c.topChannels(), groups, HunyuanVideoVaeConfig.NORM_EPS, CausalConv3d::load,
                    c.midBlockAddAttention() ? CausalMidBlockAttention::load : null, dtype));
            List<UpBlock> blocks = new ArrayList<>();
            long out = c.channels(n - 1);
            for (int i = 0; i < n; i++) {
                long in = out;
                out = c.channels(n - 1 - i);
                String p = "decoder.up_blocks." + i + ".";
                List<ResnetBlock> resnets = new ArrayList<>();
                for (int j = 0; j < c.layersPerBlock() + 1; j++) {
                    resnets.add(Modules.track(built, ResnetBlock.load(sd, p + "resnets." + j + ".", j == 0 ? in : out, out, groups, HunyuanVideoVaeConfig.NORM_EPS, CausalConv3d::load, dtype)));
                }
                boolean space = c.upsamplesSpatially(i), time = c.upsamplesTemporally(i);
                UpsampleCausal3D up = space || time
                        ? Modules.track(built, UpsampleCausal3D.load(sd, p + "upsamplers.0.", out, time ? 2 : 1, space ? 2 : 1, dtype)) : null;
                blocks.add(new UpBlock(List.copyOf(resnets), up));
            }
            GroupNorm normOut = Modules.track(built, GroupNorm.load(sd, "decoder.conv_norm_out", c.channels(0), groups, HunyuanVideoVaeConfig.NORM_EPS, dtype));
            CausalConv3d convOut = Modules.track(built, CausalConv3d.load(sd, "decoder.conv_out", c.channels(0), c.outChannels(), 3, dtype));
            return new Decoder3D(convIn, mid, List.copyOf(blocks), normOut, convOut);
        } catch (RuntimeException e) {
            Modules.closeAll(built);
            throw e;
        }
    }


    /** {@code z [B, latent, F', h, w]} → {@code [B, out, 1 + 4(F'−1), 8h, 8w]}, owned by the caller. */
    Tensor forward(Tensor z) {
        return forward(z, null);
    }

    /**
     * As {@link #forward(Tensor)}, handing each stage's output to {@code observer} (named as the golden debug tensors:
     * {@code decoder_conv_in_out}, {@code decoder_mid_block_out}, {@code decoder_up_block_<i>_out}); the observer
     * borrows the tensor and must copy what it keeps.
     */
    Tensor forward(Tensor z, java.util.function.BiConsumer<String, Tensor> observer) {
        Tensor h = Scopes.owned(() -> conv_in.forward(z));                            // [B, top, F', h, w]
        if (observer != null) observer.accept("decoder_conv_in_out", h);
        h = Scopes.then(h, mid_block::forward);
        if (observer != null) observer.accept("decoder_mid_block_out", h);
        for (int i = 0; i < up_blocks.size(); i++) {
            h = Scopes.then(h, up_blocks.get(i)::forward);                            // [B, C_i, F_i, H_i, W_i]
            if (observer != null) observer.accept("decoder_up_block_" + i + "_out", h);
        }
        return Scopes.then(h, t -> Scopes.owned(() -> {
            Tensor a = silu(conv_norm_out.forward(t));
            Tensor y = conv_out.forward(a);                                           // [B, out, F, H, W]
            a.close();
            return y;
        }));
    }

    @Override
    public void close() {
        Modules.closeAll(Arrays.asList(conv_in, mid_block, conv_norm_out, conv_out));
        Modules.closeAll(up_blocks);
    }
}
