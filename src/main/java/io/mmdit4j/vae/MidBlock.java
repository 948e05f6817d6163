package io.mmdit4j.vae;

import io.mmdit4j.io.StateDict;
import io.mmdit4j.nn.Modules;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Scopes;
import org.bytedeco.pytorch.Tensor;

import java.util.Arrays;

import static io.mmdit4j.nn.Modules.track;

/**
 * diffusers {@code UNetMidBlock2D} as AutoencoderKL builds it, and {@code HunyuanVideoMidBlock3D} (one layer):
 * resnet, optional attention, resnet (same channels).
 */
public final class MidBlock implements Block {
    final ResnetBlock resnets_0;
    final Block attentions_0; // null without mid_block_add_attention
    final ResnetBlock resnets_1;

    private MidBlock(ResnetBlock r0, Block attention, ResnetBlock r1) {
        this.resnets_0 = r0;
        this.attentions_0 = attention;
        this.resnets_1 = r1;
    }

    /** @param attention loads {@code attentions.0}, or null for a mid block without attention */
    public static MidBlock load(StateDict sd, String p, long channels, long groups, double eps, Conv.Loader conv,
                                Block.AttentionLoader attention, DType dtype) {
        return Modules.loading(built -> new MidBlock(track(built, ResnetBlock.load(sd, p + "resnets.0.", channels, channels, groups, eps, conv, dtype)),
                attention == null ? null : track(built, attention.load(sd, p + "attentions.0.", channels, groups, eps, dtype)),
                track(built, ResnetBlock.load(sd, p + "resnets.1.", channels, channels, groups, eps, conv, dtype))));
    }

    @Override
    public Tensor forward(Tensor x) { // owned by the caller
        Tensor h = resnets_0.forward(x);
        if (attentions_0 != null) h = Scopes.then(h, attentions_0::forward);
        return Scopes.then(h, resnets_1::forward);
    }

    @Override
    public void close() {
        Modules.closeAll(Arrays.asList(resnets_0, attentions_0, resnets_1));
    }
}
