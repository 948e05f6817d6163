package io.mmdit4j.vae;

import io.mmdit4j.io.StateDict;
import io.mmdit4j.nn.Modules;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Scopes;
import org.bytedeco.pytorch.Tensor;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Supplier;

import static io.mmdit4j.nn.Modules.track;

/**
 * A VAE down or up block: diffusers' {@code DownEncoderBlock2D}, {@code UpDecoderBlock2D} and
 * {@code HunyuanVideoUpBlock3D} are all {@code resnets.*} (the first from {@code in} to {@code out} channels), then a
 * down- or up-sampler where the block has one.
 */
final class UpDownBlock implements Block {
    final List<ResnetBlock> resnets;
    final Block sampler; // downsamplers.0 / upsamplers.0, null where the block has none (the last one)

    private UpDownBlock(List<ResnetBlock> resnets, Block sampler) {
        this.resnets = resnets;
        this.sampler = sampler;
    }

    /** @param sampler loads the block's sampler after its resnets, or returns null (as may the supplier itself be) */
    static UpDownBlock load(StateDict sd, String p, long in, long out, int layers, long groups, double eps, Conv.Loader conv,
                            Supplier<Block> sampler, DType dtype) {
        return Modules.loading(built -> {
            List<ResnetBlock> resnets = new ArrayList<>();
            for (int j = 0; j < layers; j++) {
                resnets.add(track(built, ResnetBlock.load(sd, p + "resnets." + j + ".", j == 0 ? in : out, out, groups, eps, conv, dtype)));
            }
            Block s = sampler == null ? null : sampler.get();
            if (s != null) built.add(s);
            return new UpDownBlock(List.copyOf(resnets), s);
        });
    }

    @Override
    public Tensor forward(Tensor x) { // owned by the caller
        Tensor h = resnets.get(0).forward(x);
        for (int j = 1; j < resnets.size(); j++) h = Scopes.then(h, resnets.get(j)::forward);
        return sampler == null ? h : Scopes.then(h, sampler::forward);
    }

    @Override
    public void close() {
        Modules.closeAll(resnets);
        Modules.closeQuietly(sampler);
    }
}
