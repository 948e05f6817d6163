package io.mmdit4j.vae;

import io.mmdit4j.io.StateDict;
import io.mmdit4j.nn.Modules;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Scopes;
import org.bytedeco.pytorch.Tensor;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.BiConsumer;

import static io.mmdit4j.nn.Modules.track;
import static org.bytedeco.pytorch.global.torch.silu;

/**
 * The VAE decoder: diffusers' {@code Decoder} (AutoencoderKL) and {@code HunyuanVideoDecoder3D} are the same network over
 * 2-D or frame-causal 3-D convolutions. {@code conv_in} (latent → top channels); the mid block; up blocks in reversed
 * channel order ({@code layers_per_block + 1} resnets each, then the model's up-sampler where the block has one:
 * {@link Upsample2D} in all but the last 2-D block, HunyuanVideo's causal one where its config asks for spatial and/or
 * temporal up-sampling); {@code conv_norm_out}, SiLU, {@code conv_out}.
 */
public final class Decoder implements AutoCloseable {
    final Conv conv_in;
    final MidBlock mid_block;
    final List<UpDownBlock> up_blocks;
    final GroupNorm conv_norm_out;
    final Conv conv_out;

    /** Loads up block {@code block}'s up-sampler ({@code prefix} is its {@code upsamplers.0.}), or returns null where it has none. */
    @FunctionalInterface
    public interface UpsamplerLoader {
        Block load(StateDict sd, String prefix, int block, long channels, DType dtype);
    }

    private Decoder(Conv convIn, MidBlock mid, List<UpDownBlock> upBlocks, GroupNorm normOut, Conv convOut) {
        this.conv_in = convIn;
        this.mid_block = mid;
        this.up_blocks = upBlocks;
        this.conv_norm_out = normOut;
        this.conv_out = convOut;
    }

    /**
     * Loads {@code decoder.*} of a VAE with block layout {@code c}.
     *
     * @param conv      the convolutions ({@code Conv2d::same} or the causal 3-D conv)
     * @param attention the mid-block attention, used when {@code c} has one
     */
    public static Decoder load(StateDict sd, VaeBlocks c, Conv.Loader conv, Block.AttentionLoader attention, UpsamplerLoader upsampler,
                               DType dtype) {
        long groups = c.normNumGroups(), top = c.topChannels();
        int n = c.numBlocks();
        return Modules.loading(built -> {
            Conv convIn = track(built, conv.load(sd, "decoder.conv_in", c.latentChannels(), top, 3, dtype));
            MidBlock mid = track(built, MidBlock.load(sd, "decoder.mid_block.", top, groups, VaeBlocks.NORM_EPS, conv,
                    c.midBlockAddAttention() ? attention : null, dtype));
            List<UpDownBlock> blocks = new ArrayList<>();
            long out = top;
            for (int i = 0; i < n; i++) {
                long in = out;
                out = c.channels(n - 1 - i);
                String p = "decoder.up_blocks." + i + ".";
                int block = i;
                long channels = out;
                blocks.add(track(built, UpDownBlock.load(sd, p, in, out, c.layersPerBlock() + 1, groups, VaeBlocks.NORM_EPS, conv,
                        () -> upsampler.load(sd, p + "upsamplers.0.", block, channels, dtype), dtype)));
            }
            GroupNorm normOut = track(built, GroupNorm.load(sd, "decoder.conv_norm_out", c.channels(0), groups, VaeBlocks.NORM_EPS, dtype));
            Conv convOut = track(built, conv.load(sd, "decoder.conv_out", c.channels(0), c.outChannels(), 3, dtype));
            return new Decoder(convIn, mid, List.copyOf(blocks), normOut, convOut);
        });
    }

    /** {@code z [B, latent, (F',) h, w]} → the decoded image or video, owned by the caller. */
    public Tensor forward(Tensor z) {
        return forward(z, null);
    }

    /**
     * As {@link #forward(Tensor)}, handing each stage's output to {@code observer} when given (named as the golden debug
     * tensors: {@code decoder_conv_in_out}, {@code decoder_mid_block_out}, {@code decoder_up_block_<i>_out}); the observer
     * borrows the tensor and must copy what it keeps.
     */
    public Tensor forward(Tensor z, BiConsumer<String, Tensor> observer) {
        Tensor h = Scopes.owned(() -> conv_in.forward(z));                            // [B, top, (F',) h, w]
        if (observer != null) observer.accept("decoder_conv_in_out", h);
        h = Scopes.then(h, mid_block::forward);
        if (observer != null) observer.accept("decoder_mid_block_out", h);
        for (int i = 0; i < up_blocks.size(); i++) {
            h = Scopes.then(h, up_blocks.get(i)::forward);                            // [B, C_i, (F_i,) H_i, W_i]
            if (observer != null) observer.accept("decoder_up_block_" + i + "_out", h);
        }
        return Scopes.then(h, t -> Scopes.owned(() -> {
            Tensor a = silu(conv_norm_out.forward(t));
            Tensor y = conv_out.forward(a);                                           // [B, out, (F,) H, W]
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
