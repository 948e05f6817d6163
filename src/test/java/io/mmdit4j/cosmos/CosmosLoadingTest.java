package io.mmdit4j.cosmos;

import io.mmdit4j.GoldenData;
import io.mmdit4j.io.ModelFormatException;
import io.mmdit4j.io.SafetensorsFile;
import io.mmdit4j.io.SafetensorsWriter;
import io.mmdit4j.io.TorchCheckpoint;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.DeviceSpec;
import io.mmdit4j.runtime.Tensors;
import io.mmdit4j.runtime.Torch;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;

import static org.bytedeco.pytorch.global.torch.equal;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Loading COSMOS and its adapter: the three adapter layouts, the pickle reader's refusals, and bad inputs. */
class CosmosLoadingTest {
    private static final Path TINY = GoldenData.root().resolve("cosmos_transformer/models/tiny");

    @TempDir
    Path tmp;

    @BeforeAll
    static void init() {
        Torch.init();
    }

    @Test
    void theReferenceCheckpointHoldsExactlyTheSafetensorsAdapter() {
        try (TorchCheckpoint pt = TorchCheckpoint.open(TINY.resolve("checkpoint_1000.pt"));
             SafetensorsFile st = SafetensorsFile.open(TINY.resolve("pooled_adapter.safetensors")); PointerScope scope = new PointerScope()) {
            assertEquals(st.keys(), pt.keys());
            for (String k : st.keys()) {
                Tensor a = pt.load(k), b = st.load(k);
                assertArrayEquals(Tensors.shape(b), Tensors.shape(a), k);
                assertTrue(equal(a, b), k + " differs");
            }
        }
    }

    @Test
    void theAdapterLoadsFromEachLayoutAndTheBaseModelHasNone() {
        Path folder = TINY.resolve("transformer");
        try (CosmosTransformer base = CosmosTransformer.load(folder, DType.F32, DeviceSpec.CPU);
             CosmosTransformer st = CosmosTransformer.load(folder, TINY.resolve("pooled_adapter.safetensors"), DType.F32, DeviceSpec.CPU);
             CosmosTransformer pt = CosmosTransformer.load(folder, TINY.resolve("checkpoint_1000.pt"), DType.F32, DeviceSpec.CPU);
             CosmosTransformer wrapper = CosmosTransformer.load(TINY.resolve("wrapper_state_dict.safetensors"), DType.F32, DeviceSpec.CPU)) {
            assertNull(base.adapter());
            assertEquals(0, base.pooledDim());
            for (CosmosTransformer m : new CosmosTransformer[] {st, pt, wrapper}) {
                assertNotNull(m.adapter());
                assertEquals(32, m.pooledDim());
                assertTrue(equal(st.adapter().scales(), m.adapter().scales()));
            }
            assertEquals(base.config(), wrapper.config(), "the config detected from the wrapper's tensors equals config.json's");
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> base.guidanceDelta(
                    org.bytedeco.pytorch.global.torch.zeros(1, 32), org.bytedeco.pytorch.global.torch.zeros(1, 32)));
            assertTrue(e.getMessage().contains("no pooled-CLIP adapter"), e.getMessage());
        }
    }

    @Test
    void anAdapterWithWrongShapesIsAClearError() {
        Map<String, Tensor> bad = new LinkedHashMap<>();
        try (SafetensorsFile st = SafetensorsFile.open(TINY.resolve("pooled_adapter.safetensors")); PointerScope scope = new PointerScope()) {
            for (String k : st.keys()) bad.put(k, st.load(k));
            bad.put("scales", bad.get("scales").narrow(1, 0, 95).contiguous());
            Path file = tmp.resolve("bad_adapter.safetensors");
            SafetensorsWriter.write(file, bad);
            ModelFormatException e = assertThrows(ModelFormatException.class,
                    () -> CosmosTransformer.load(TINY.resolve("transformer"), file, DType.F32, DeviceSpec.CPU));
            assertTrue(e.getMessage().contains("pooled-CLIP adapter") && e.getMessage().contains("'scales'") && e.getMessage().contains("[3, 95]"),
                    e.getMessage());
            bad.remove("scales");
            SafetensorsWriter.write(file, bad);
            e = assertThrows(ModelFormatException.class, () -> CosmosTransformer.load(TINY.resolve("transformer"), file, DType.F32, DeviceSpec.CPU));
            assertTrue(e.getMessage().contains("'scales'"), e.getMessage());
        }
    }

    @Test
    void aPickleThatCallsCodeIsRefusedBeforeAnythingRuns() throws IOException {
        // the classic payload: os.system("...") through GLOBAL + REDUCE
        Path evil = checkpoint("evil", bytes("\u0080\u0002cos\nsystem\nq\u0000X\u0005\u0000\u0000\u0000touch\u0085R."));
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> TorchCheckpoint.open(evil));
        assertTrue(e.getMessage().contains("refusing") && e.getMessage().contains("os system"), e.getMessage());
        // code objects / builtins.eval, and an arbitrary class to instantiate
        for (String global : new String[] {"builtins\neval\n", "types\nCodeType\n", "torch.nn.modules.linear\nLinear\n"}) {
            Path p = checkpoint("g", bytes("\u0080\u0002c" + global + ")R."));
            e = assertThrows(ModelFormatException.class, () -> TorchCheckpoint.open(p));
            assertTrue(e.getMessage().contains("refusing") && e.getMessage().contains("global"), e.getMessage());
        }
        // an opcode outside the tensor subset (INST)
        Path inst = checkpoint("inst", bytes("\u0080\u0002(ios\nsystem\n."));
        e = assertThrows(ModelFormatException.class, () -> TorchCheckpoint.open(inst));
        assertTrue(e.getMessage().contains("opcode"), e.getMessage());
        // not a zip at all
        Path legacy = tmp.resolve("legacy.pt");
        Files.write(legacy, bytes("\u0080\u0002}q\u0000."));
        e = assertThrows(ModelFormatException.class, () -> CosmosTransformer.load(TINY.resolve("transformer"), legacy, DType.F32, DeviceSpec.CPU));
        assertTrue(e.getMessage().contains("not a zip"), e.getMessage());
    }

    @Test
    void aNonCosmosFolderIsAClearError() {
        Path flux = GoldenData.root().resolve("flux_transformer/models/schnell/transformer");
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> CosmosTransformer.load(flux, DType.F32, DeviceSpec.CPU));
        assertTrue(e.getMessage().contains("CosmosTransformer3DModel"), e.getMessage());
        Path fluxPipeline = GoldenData.root().resolve("flux_pipeline/models");
        try (java.util.stream.Stream<Path> s = Files.list(fluxPipeline)) {
            Path folder = s.filter(p -> Files.isRegularFile(p.resolve("model_index.json"))).findFirst().orElseThrow();
            e = assertThrows(ModelFormatException.class, () -> CosmosPipeline.load(folder, null, null, DType.F32, DeviceSpec.CPU));
            assertTrue(e.getMessage().contains("Cosmos2TextToImagePipeline"), e.getMessage());
        } catch (IOException x) {
            throw new java.io.UncheckedIOException(x);
        }
        e = assertThrows(ModelFormatException.class, () -> io.mmdit4j.vae.wan.AutoencoderKLWan.load(
                GoldenData.root().resolve("hunyuan_video_vae/models/vae"), DType.F32, DeviceSpec.CPU));
        assertTrue(e.getMessage().contains("AutoencoderKLWan"), e.getMessage());
    }

    private static byte[] bytes(String latin1) {
        return latin1.getBytes(StandardCharsets.ISO_8859_1);
    }

    private Path checkpoint(String name, byte[] pickle) throws IOException {
        Path p = tmp.resolve(name + ".pt");
        try (OutputStream out = Files.newOutputStream(p); ZipOutputStream zip = new ZipOutputStream(out)) {
            zip.putNextEntry(new ZipEntry(name + "/data.pkl"));
            zip.write(pickle);
            zip.closeEntry();
            zip.putNextEntry(new ZipEntry(name + "/version"));
            zip.write("3\n".getBytes(StandardCharsets.US_ASCII));
            zip.closeEntry();
        }
        return p;
    }
}
