package io.mmdit4j.cli;

import io.mmdit4j.GoldenData;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The command line on damaged inputs: one {@code mmdit: error:} line and exit 2; and {@code generate --no-mmap}. */
class DamagedInputsCommandTest {
    private static final Path MODEL = GoldenData.root().resolve("flux_pipeline/models/flux-tiny-dev");

    private static void oneErrorLine(CheckGoldenCommandTest.Run r, String... fragments) {
        assertEquals(2, r.exit(), r.out() + r.err());
        String err = r.err().strip();
        assertTrue(err.startsWith("mmdit: error: ") && !err.contains("\n"), err);
        assertFalse(err.contains("Exception"), err);
        for (String f : fragments) assertTrue(err.contains(f), () -> "'" + f + "' in " + err);
    }

    @Test
    void noMmapGivesTheSameImage(@TempDir Path tmp) throws IOException {
        Path model = tmp.resolve("model");
        try (Stream<Path> files = Files.walk(MODEL)) {
            for (Path p : (Iterable<Path>) files::iterator) {
                Path to = model.resolve(MODEL.relativize(p).toString());
                if (Files.isDirectory(p)) Files.createDirectories(to);
                else Files.copy(p, to);
            }
        }
        String[] common = {"generate", "--model", model.toString(), "--prompt", "a fox", "--seed", "2", "--width", "32", "--height", "32",
                "--steps", "1", "--max-sequence-length", "16"};
        Path mapped = tmp.resolve("mapped.png"), read = tmp.resolve("read.png");
        CheckGoldenCommandTest.Run r = CheckGoldenCommandTest.run(concat(common, "--out", mapped.toString()));
        assertEquals(0, r.exit(), r.err());
        r = CheckGoldenCommandTest.run(concat(common, "--no-mmap", "--out", read.toString()));
        assertEquals(0, r.exit(), r.err());
        assertArrayEquals(Files.readAllBytes(mapped), Files.readAllBytes(read), "--no-mmap changes where the weights live, not the image");
    }

    @Test
    void damagedPngsAreOneClearError(@TempDir Path tmp) throws IOException {
        Path png = tmp.resolve("a.png");
        CheckGoldenCommandTest.Run r = CheckGoldenCommandTest.run("generate", "--model", MODEL.toString(), "--prompt", "a fox", "--width", "32",
                "--height", "32", "--steps", "1", "--max-sequence-length", "16", "--out", png.toString());
        assertEquals(0, r.exit(), r.err());
        byte[] bytes = Files.readAllBytes(png);
        bytes[60] ^= 1;
        Path damaged = Files.write(tmp.resolve("damaged.png"), bytes);
        oneErrorLine(CheckGoldenCommandTest.run("inspect", damaged.toString()), damaged.toString(), "CRC mismatch");
        oneErrorLine(CheckGoldenCommandTest.run("generate", "--from", damaged.toString(), "--out", tmp.resolve("b.png").toString()),
                damaged.toString(), "CRC mismatch");
        Path cut = Files.write(tmp.resolve("cut.png"), java.util.Arrays.copyOf(Files.readAllBytes(png), 100));
        oneErrorLine(CheckGoldenCommandTest.run("inspect", cut.toString()), "truncated");
        assertFalse(Files.exists(tmp.resolve("b.png")));
    }

    @Test
    void anErrorWithoutAMessageIsStillDescribed() {
        assertEquals("connection refused", Main.describe(new java.io.IOException(new java.net.ConnectException("connection refused"))));
        assertEquals("connect", Main.describe(new java.net.ConnectException()));
        assertEquals("unexpected failure", Main.describe(new java.io.IOException() {}));
    }

    @Test
    void inspectEscapesControlCharacters(@TempDir Path tmp) throws IOException {
        Path png = tmp.resolve("ctl.png");
        io.mmdit4j.image.PngImages.write(png, new java.awt.image.BufferedImage(2, 2, java.awt.image.BufferedImage.TYPE_INT_RGB),
                java.util.Map.of("note", "red \u001b[31mtext\u001b[0m\nsecond line"));
        CheckGoldenCommandTest.Run r = CheckGoldenCommandTest.run("inspect", png.toString());
        assertEquals(0, r.exit(), r.err());
        assertEquals("note: red \\u001b[31mtext\\u001b[0m\nsecond line", r.out().strip());
    }

    @Test
    void checkpointsThatCannotBeUsedAreOneClearError(@TempDir Path tmp) throws IOException {
        Path folder = Files.createDirectories(tmp.resolve("transformer"));
        Files.copy(MODEL.resolve("transformer/config.json"), folder.resolve("config.json"));
        oneErrorLine(CheckGoldenCommandTest.run("generate", "--model", folder.toString(), "--prompt", "x"),
                folder + ": a folder without model_index.json");
        Path model = tmp.resolve("model");
        try (Stream<Path> files = Files.walk(MODEL)) {
            for (Path p : (Iterable<Path>) files::iterator) {
                Path to = model.resolve(MODEL.relativize(p).toString());
                if (Files.isDirectory(p)) Files.createDirectories(to);
                else Files.copy(p, to);
            }
        }
        Path weights = model.resolve("transformer/diffusion_pytorch_model.safetensors");
        try (RandomAccessFile f = new RandomAccessFile(weights.toFile(), "rw")) {
            f.setLength(100_000);
        }
        oneErrorLine(CheckGoldenCommandTest.run("generate", "--model", model.toString(), "--prompt", "x", "--out", tmp.resolve("x.png").toString()),
                weights.toString(), "outside the data section");
    }

    private static String[] concat(String[] a, String... b) {
        String[] c = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, c, a.length, b.length);
        return c;
    }
}
