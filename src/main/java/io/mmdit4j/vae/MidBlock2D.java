package io.mmdit4j.vae;

import io.mmdit4j.runtime.Scopes;
import io.mmdit4j.io.StateDict;
import io.mmdit4j.nn.Modules;
import io.mmdit4j.runtime.DType;
import org.bytedeco.pytorch.Tensor;

import java.util.Arrays;

/** diffusers {@code UNetMidBlock2D} as AutoencoderKL builds it: resnet, optional attention, resnet (same channels). */
final class MidBlock2D implements AutoCloseable {
    final ResnetBlock2D resnets_0;
    final MidBlockAttention attentions_0; // null without mid_block_add_attention
    final ResnetBlock2D resnets_1;

    private MidBlock2D(ResnetBlock2D r0, MidBlockAttention attention, ResnetBlock2D r1) {
        this.resnets_0 = r0;
        this.attentions_0 = attention;
        this.resnets_1 = r1;
    }

    static MidBlock2D load(StateDict sd, String p, long channels, long groups, boolean attention, DType dtype) {
        ResnetBlock2D r0 = null, r1 = null;
        MidBlockAttention attn = null;
        try {
            r0 = ResnetBlock2D.load(sd, p + "resnets.0.", channels, channels, groups, dtype);
            if (attention) attn = MidBlockAttention.load(sd, p + "attentions.0.", channels, groups, dtype);
            r1 = ResnetBlock2D.load(sd, p + "resnets.1.", channels, channels, groups, dtype);
            return new MidBlock2D(r0, attn, r1);
        } catch (RuntimeException e) {
            Modules.closeAll(Arrays.asList(r0, attn, r1));
            throw e;
        }
    }

    Tensor forward(Tensor x) { // owned by the caller
        Tensor h = resnets_0.forward(x);
        if (attentions_0 != null) h = Scopes.then(h, attentions_0::forward);
        return Scopes.then(h, resnets_1::forward);
    }

    @Override
    public void close() {
        Modules.closeAll(Arrays.asList(resnets_0, attentions_0, resnets_1));
    }
}
