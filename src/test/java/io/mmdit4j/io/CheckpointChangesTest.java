package io.mmdit4j.io;

import io.mmdit4j.pipeline.GenerationRequest;
import io.mmdit4j.pipeline.GenerationResult;
import io.mmdit4j.pipeline.LoadOptions;
import io.mmdit4j.pipeline.Pipeline;
import io.mmdit4j.pipeline.Pipelines;
import io.mmdit4j.runtime.Tensors;
import io.mmdit4j.runtime.Torch;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.FileTime;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Checkpoints that change on disk while mapped. A mapped file that shrinks crashes the process with SIGBUS on the next
 * read of a page past its end: every load phase and every generation first checks (a stat) that the file is still the
 * one whose header was validated, and fails with a clear message instead; read into memory (--no-mmap), a loaded model
 * does not depend on its files at all. These tests never read a page of a file after truncating it.
 */
class CheckpointChangesTest {
    @TempDir
    Path tmp;

    @BeforeAll
    static void init() {
        Torch.init();
    }

    private static Tensor ramp(int n, float start) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) v[i] = start + 0.25f * i;
        return Tensors.fromFloats(v, n);
    }

    /** Two fp32 tensors of 1 MB each, so truncating to 100 KB cuts both. */
    private Path checkpoint(String name) {
        Path f = tmp.resolve(name);
        try (PointerScope s = new PointerScope()) {
            Map<String, Tensor> t = new LinkedHashMap<>();
            t.put("a", ramp(1 << 18, 0));
            t.put("b", ramp(1 << 18, 1));
            SafetensorsWriter.write(f, t);
        }
        return f;
    }

    private static void truncate(Path f, long size) throws IOException {
        try (RandomAccessFile r = new RandomAccessFile(f.toFile(), "rw")) {
            r.setLength(size);
        }
    }

    private static ModelFormatException changed(org.junit.jupiter.api.function.Executable e, Path f, String... fragments) {
        ModelFormatException ex = assertThrows(ModelFormatException.class, e);
        String m = ex.getMessage();
        assertTrue(m.startsWith(f + ": the checkpoint changed on disk since it was opened ("), m);
        assertTrue(m.contains("reload the model"), m);
        for (String s : fragments) assertTrue(m.contains(s), () -> "message should contain '" + s + "': " + m);
        return ex;
    }

    @Test
    void fileTruncatedAfterOpeningFailsTheFirstLoad() throws IOException {
        Path f = checkpoint("t.safetensors");
        long size = Files.size(f);
        try (SafetensorsFile sf = SafetensorsFile.open(f)) {
            truncate(f, 100_000); // between reading the header and mapping: used to fail inside libtorch, or map a short file
            changed(() -> sf.load("a"), f, "size " + size + " -> 100000 bytes");
        }
    }

    @Test
    void fileTruncatedAfterMappingFailsTheNextLoad() throws IOException {
        Path f = checkpoint("m.safetensors");
        try (PointerScope s = new PointerScope(); SafetensorsFile sf = SafetensorsFile.open(f)) {
            Tensor a = sf.load("a"); // mapped, and never read below
            truncate(f, 100_000);
            // A view of b would SIGBUS on first use: refused before it exists.
            changed(() -> sf.load("b"), f, "-> 100000 bytes");
            a.close();
        }
    }

    @Test
    void fileRewrittenInPlaceOrReplacedIsDetected() throws IOException {
        Path f = checkpoint("r.safetensors");
        try (PointerScope s = new PointerScope(); SafetensorsFile sf = SafetensorsFile.open(f)) {
            sf.load("a");
            try (FileChannel ch = FileChannel.open(f, StandardOpenOption.WRITE)) { // same size, other bytes
                ch.write(java.nio.ByteBuffer.wrap(new byte[] {1, 2, 3, 4}), Files.size(f) - 4);
            }
            Files.setLastModifiedTime(f, FileTime.fromMillis(Files.getLastModifiedTime(f).toMillis() + 5000));
            changed(() -> sf.load("b"), f, "modified");
        }
        Path g = checkpoint("g.safetensors");
        try (PointerScope s = new PointerScope(); SafetensorsFile sf = SafetensorsFile.open(g)) {
            sf.load("a");
            Path other = checkpoint("other.safetensors");
            Files.move(other, g, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE); // a download's rename
            changed(() -> sf.load("b"), g, "replaced by another file");
        }
        Path d = checkpoint("d.safetensors");
        try (SafetensorsFile sf = SafetensorsFile.open(d)) {
            Files.delete(d);
            changed(() -> sf.load("a"), d, "deleted or moved away");
        }
    }

    @Test
    void readIntoMemoryTheTensorsDoNotDependOnTheFile() throws IOException {
        Path f = checkpoint("n.safetensors");
        try (PointerScope s = new PointerScope()) {
            float[] want;
            try (SafetensorsFile mapped = SafetensorsFile.open(f, true)) {
                want = Tensors.toFloats(mapped.load("a"));
            }
            SafetensorsFile sf = SafetensorsFile.open(f, false);
            assertFalse(sf.memoryMapped());
            Tensor a = sf.load("a");
            assertEquals(0, a.storage().nbytes() - (1 << 20), "a storage of its own, not the file's");
            truncate(f, 100_000);
            assertArrayEquals(want, Tensors.toFloats(a), "unaffected by the truncation");
            changed(() -> sf.load("b"), f, "-> 100000 bytes"); // the file is no longer the one whose header was read
            sf.close();
        }
    }

    @Test
    void readsIntoMemoryEqualTheMappedTensorsForEveryDtypeAndPieceSize() throws IOException {
        Path f = tmp.resolve("dtypes.safetensors");
        try (PointerScope s = new PointerScope()) {
            Map<String, Tensor> t = new LinkedHashMap<>();
            Tensor base = ramp(37, -3);
            t.put("f32", base);
            t.put("bf16", base.to(org.bytedeco.pytorch.global.torch.ScalarType.BFloat16));
            t.put("f16", base.to(org.bytedeco.pytorch.global.torch.ScalarType.Half));
            t.put("i64", base.to(org.bytedeco.pytorch.global.torch.ScalarType.Long));
            t.put("empty", ramp(0, 0));
            SafetensorsWriter.write(f, t);
            try (SafetensorsFile mapped = SafetensorsFile.open(f, true); SafetensorsFile read = SafetensorsFile.open(f, false)) {
                for (String k : mapped.keys()) {
                    Tensor m = mapped.load(k), r = read.load(k);
                    assertArrayEquals(Tensors.shape(m), Tensors.shape(r), k);
                    assertTrue(org.bytedeco.pytorch.global.torch.equal(m, r), k);
                }
            }
            // Reads above 2 GB go in pieces: the same bytes whatever the piece size.
            long offset = 8 + headerLength(f);
            for (int piece : new int[] {1, 7, 64, 1 << 30}) {
                BytePointer dst = new BytePointer(148);
                try (FileChannel ch = FileChannel.open(f, StandardOpenOption.READ)) {
                    assertTrue(FileBytes.readFully(ch, offset, dst, 148, piece));
                    assertFalse(FileBytes.readFully(ch, Files.size(f) - 10, dst, 148, piece), "past the end");
                    FileBytes.readFully(ch, offset, dst, 148, piece);
                }
                byte[] got = new byte[148], want = new byte[148];
                dst.get(got);
                System.arraycopy(Files.readAllBytes(f), (int) offset, want, 0, 148);
                assertArrayEquals(want, got, "piece " + piece);
            }
        }
    }

    private static long headerLength(Path f) throws IOException {
        return java.nio.ByteBuffer.wrap(Files.readAllBytes(f), 0, 8).order(java.nio.ByteOrder.LITTLE_ENDIAN).getLong();
    }

    @Test
    void aFileChangedBetweenTwoOpensOfOneLoadIsDetected() throws IOException {
        Path f = checkpoint("twice.safetensors");
        Path other = checkpoint("other.safetensors");
        CheckpointFiles files = new CheckpointFiles(true);
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> files.load(() -> {
            SafetensorsFile.open(f).close(); // e.g. a loader reading the config from the header
            try {
                Files.move(other, f, StandardCopyOption.REPLACE_EXISTING); // a valid checkpoint, but another one
            } catch (IOException x) {
                throw new java.io.UncheckedIOException(x);
            }
            return SafetensorsFile.open(f); // then the weights
        }));
        assertTrue(e.getMessage().startsWith(f + ": the checkpoint changed on disk while the model was loading (replaced by another file"),
                e.getMessage());
        assertEquals(1, files.files().size());
    }

    /** The common case of the report: a checkpoint replaced between loading the model and generating. */
    @Test
    void aPipelineRefusesToGenerateFromACheckpointTruncatedAfterLoading() throws IOException {
        Path demo = copyOfTheDemo("mapped");
        Path transformer = demo.resolve("transformer/diffusion_pytorch_model.safetensors");
        long size = Files.size(transformer);
        GenerationRequest r = GenerationRequest.builder().prompt("a wolf").size(32, 32).steps(1).seed(3).build();
        try (Pipeline p = Pipelines.load(demo, LoadOptions.defaults())) {
            try (GenerationResult first = p.generate(r)) {
                assertEquals(1, first.count());
            }
            truncate(transformer, 100_000);
            ModelFormatException e = changed(() -> p.generate(r).close(), transformer, "size " + size + " -> 100000 bytes");
            assertTrue(e.getMessage().contains("--no-mmap"), e.getMessage());
        }
    }

    @Test
    void readIntoMemoryAPipelineGeneratesWhateverHappensToItsFiles() throws IOException {
        Path demo = copyOfTheDemo("in-memory");
        Path transformer = demo.resolve("transformer/diffusion_pytorch_model.safetensors");
        GenerationRequest r = GenerationRequest.builder().prompt("a wolf").size(32, 32).steps(1).seed(3).build();
        float[] mapped;
        try (Pipeline p = Pipelines.load(demo, LoadOptions.defaults()); GenerationResult g = p.generate(r)) {
            mapped = Tensors.toFloats(g.images());
        }
        try (Pipeline p = Pipelines.load(demo, LoadOptions.builder().memoryMapped(false).build())) {
            truncate(transformer, 100_000);
            Files.delete(demo.resolve("vae/diffusion_pytorch_model.safetensors"));
            try (GenerationResult g = p.generate(r)) {
                assertArrayEquals(mapped, Tensors.toFloats(g.images()), "the same image as from the mapped files");
            }
        }
    }

    private Path copyOfTheDemo(String name) throws IOException {
        Path src = Pipelines.prepare("flux-tiny-demo", LoadOptions.defaults()).path();
        Path dst = tmp.resolve(name);
        try (Stream<Path> files = Files.walk(src)) {
            for (Path p : (Iterable<Path>) files::iterator) {
                Path to = dst.resolve(src.relativize(p).toString());
                if (Files.isDirectory(p)) Files.createDirectories(to);
                else Files.copy(p, to);
            }
        }
        return dst;
    }
}
