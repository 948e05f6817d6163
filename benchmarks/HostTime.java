import io.mmdit4j.flux.*;
import io.mmdit4j.guidance.ModulationGuidance;
import io.mmdit4j.nn.Rope;
import io.mmdit4j.runtime.DType;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.*;
import org.bytedeco.pytorch.global.torch.ScalarType;
import static org.bytedeco.pytorch.global.torch.*;

/** Host time of one real-size FLUX.1-schnell 1024² bf16 forward on meta (median of N after 5 warm-ups), same code for both builds. */
public class HostTime {
    public static void main(String[] a) {
        int reps = Integer.parseInt(a[0]);
        FluxConfig c = FluxConfig.schnell();
        DType compute = DType.BF16;
        int rows = 64, cols = 64, text = 256, img = rows * cols;
        try (FluxTransformer model = FluxTransformer.meta(c, compute); PointerScope scope = new PointerScope(); Device meta = new Device("meta")) {
            TensorOptions m = new TensorOptions(compute.scalarType()).device(new DeviceOptional(meta));
            FluxInputs in = new FluxInputs(empty(new long[] {1, img, c.inChannels()}, m, new MemoryFormatOptional()),
                    empty(new long[] {1, text, c.jointAttentionDim()}, m, new MemoryFormatOptional()),
                    empty(new long[] {1, c.pooledProjectionDim()}, m, new MemoryFormatOptional()),
                    empty(new long[] {1}, m, new MemoryFormatOptional()), null,
                    FluxInputs.imageIds(rows, cols), zeros(new long[] {text, 3}, new TensorOptions(ScalarType.Float)));
            double[] ms = new double[reps];
            try (Rope rope = model.rope(in.txtIds(), in.imgIds())) {
                for (int i = -5; i < reps; i++) {
                    long t0 = System.nanoTime();
                    try (PointerScope s = new PointerScope()) { model.forward(in, ModulationGuidance.none(), 0, rope, null).close(); }
                    if (i >= 0) ms[i] = (System.nanoTime() - t0) / 1e6;
                }
            }
            java.util.Arrays.sort(ms);
            System.out.printf("median %.2f ms, min %.2f ms%n", ms[reps / 2], ms[0]);
        }
    }
}
