package io.mmdit4j.pipeline;

import io.mmdit4j.GoldenData;
import io.mmdit4j.image.PngImages;
import io.mmdit4j.runtime.Tensors;
import io.mmdit4j.sampling.Timings;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Issue items 4 and 8, where results are written: formats by extension, nothing overwritten unless asked, folder numbering
 * that continues, leftovers of a killed run removed, and a failure part way that says which files are complete.
 */
class OutputsTest {
    private static final PreparedModel MODEL = Pipelines.prepare(GoldenData.root().resolve("flux_pipeline/models/flux-tiny-dev").toString(),
            LoadOptions.defaults());

    /** A result of {@code n} grey 16x16 images with seeds 5, 6, ... (no model runs). */
    private static GenerationResult result(int n) {
        GenerationSettings s = MODEL.resolve(GenerationRequest.builder().prompt("a fox").imagesPerPrompt(n).size(16, 16).steps(1).seed(5).build());
        float[] grey = new float[n * 3 * 16 * 16];
        java.util.Arrays.fill(grey, 0.5f);
        return new GenerationResult(Tensors.fromFloats(grey, n, 3, 16, 16), Tensors.fromFloats(new float[n], n, 1), new Timings(0, new long[1], 0),
                s, List.of());
    }

    private static List<String> names(Path dir) throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            return s.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }

    @Test
    void unknownExtensionsAreRefusedAndCreateNothing(@TempDir Path tmp) {
        try (GenerationResult r = result(1)) {
            for (String name : new String[] {"x.jpg", "x.webp", "x.PNG.txt"}) {
                InvalidRequestException e = assertThrows(InvalidRequestException.class, () -> r.save(tmp.resolve(name)));
                assertTrue(e.getMessage().contains("unknown image extension, expected .png"), e.getMessage());
                assertFalse(Files.exists(tmp.resolve(name)), name + " must not become a folder");
            }
            assertEquals(List.of(tmp.resolve("x.PNG")), r.save(tmp.resolve("x.PNG")), "extensions are case-insensitive");
        }
    }

    @Test
    void nothingIsOverwrittenUnlessAskedAndFoldersContinueTheirNumbering(@TempDir Path tmp) throws IOException {
        try (GenerationResult two = result(2); GenerationResult one = result(1)) {
            Path file = tmp.resolve("fox.png");
            one.save(file);
            byte[] first = Files.readAllBytes(file);
            InvalidRequestException e = assertThrows(InvalidRequestException.class, () -> one.save(file));
            assertTrue(e.getMessage().contains("exists; give --overwrite"), e.getMessage());
            assertEquals(List.of(file), one.save(file, Outputs.Existing.REPLACE));
            assertEquals(first.length, Files.readAllBytes(file).length);

            Path dir = tmp.resolve("outputs");
            assertEquals(List.of(dir.resolve("000-seed5.png"), dir.resolve("001-seed6.png")), two.save(dir));
            assertEquals(List.of(dir.resolve("002-seed5.png"), dir.resolve("003-seed6.png")), two.save(dir), "numbering continues");
            Files.writeString(dir.resolve("041-seed1.png"), "a file of an earlier version");
            assertEquals(List.of(dir.resolve("042-seed5.png")), one.save(dir), "after the highest number present");
            assertEquals(List.of(dir.resolve("000-seed5.png"), dir.resolve("001-seed6.png")), two.save(dir, Outputs.Existing.REPLACE),
                    "--overwrite numbers from 000 again");
            assertEquals(List.of("000-seed5.png", "001-seed6.png", "002-seed5.png", "003-seed6.png", "041-seed1.png", "042-seed5.png"), names(dir));

            Files.createDirectories(tmp.resolve("dir.png"));
            e = assertThrows(InvalidRequestException.class, () -> one.save(tmp.resolve("dir.png")));
            assertTrue(e.getMessage().contains("is a folder"), e.getMessage());
        }
    }

    @Test
    void oneImageOfABatchGoesToAFileOfItsOwnWithItsOwnSettings(@TempDir Path tmp) throws IOException {
        Path file = tmp.resolve("rows/abc.png");
        Files.createDirectories(file.getParent());
        Files.writeString(file.resolveSibling(".abc.png123.part"), "half"); // a killed write of the same file
        try (GenerationResult r = result(3)) {
            assertEquals(file, Outputs.writeImage(r, 1, file, Outputs.Existing.KEEP));
            assertEquals(List.of("abc.png"), names(file.getParent()), "the leftover is gone, nothing else is written");
            assertEquals(r.settings().metadata(1), PngImages.readText(file), "image 1's prompt, seed 6 and settings record");
            InvalidRequestException e = assertThrows(InvalidRequestException.class, () -> Outputs.writeImage(r, 2, file, Outputs.Existing.KEEP));
            assertTrue(e.getMessage().contains("exists"), e.getMessage());
            Outputs.writeImage(r, 2, file, Outputs.Existing.REPLACE);
            assertEquals(r.settings().metadata(2), PngImages.readText(file));
            assertThrows(InvalidRequestException.class, () -> Outputs.writeImage(r, 0, tmp.resolve("abc.jpg"), Outputs.Existing.KEEP));
            assertThrows(IndexOutOfBoundsException.class, () -> Outputs.writeImage(r, 3, tmp.resolve("d.png"), Outputs.Existing.KEEP));
        }
    }

    @Test
    void leftoversOfAKilledRunAreRemovedByTheNextWrite(@TempDir Path tmp) throws IOException {
        Path dir = Files.createDirectories(tmp.resolve("outputs"));
        for (String f : new String[] {".000-seed5.png8123456789.part", ".007-seed1.mp4123.part", ".frame_00003.png77.part", ".notes.txt1.part", "keep.part"}) {
            Files.writeString(dir.resolve(f), "half");
        }
        try (GenerationResult r = result(1)) {
            r.save(dir);
        }
        assertEquals(List.of(".notes.txt1.part", "000-seed5.png", "keep.part"), names(dir), "only the .part files of our outputs");
        Files.writeString(tmp.resolve(".single.png55.part"), "half");
        try (GenerationResult r = result(1)) {
            r.save(tmp.resolve("single.png"));
        }
        assertFalse(Files.exists(tmp.resolve(".single.png55.part")));
    }

    @Test
    void aFailurePartWaySaysWhichFilesAreComplete(@TempDir Path tmp) throws IOException {
        Path dir = tmp.resolve("outputs");
        try (GenerationResult r = result(4)) {
            OutputWriteException e = assertThrows(OutputWriteException.class, () -> Outputs.write(r, dir, Outputs.Existing.KEEP, (f, res, i, text) -> {
                if (i == 2) throw new UncheckedIOException(new IOException("No space left on device"));
                PngImages.write(f, res.image(i), text);
            }));
            assertEquals(List.of(dir.resolve("000-seed5.png"), dir.resolve("001-seed6.png")), e.written());
            assertTrue(e.getMessage().contains("wrote 2 of 4 images") && e.getMessage().contains("002-seed7.png and the rest were not written")
                    && e.getMessage().contains("No space left on device"), e.getMessage());
        }
        assertEquals(List.of("000-seed5.png", "001-seed6.png"), names(dir), "complete files only, no .part left");
        assertEquals("5", PngImages.readText(dir.resolve("000-seed5.png")).get("seed"));
    }

    @Test
    void aDiskWithoutRoomForTheImagesIsRefusedBeforeAnyWork(@TempDir Path tmp) {
        PreparedModel unchecked = Pipelines.prepare(GoldenData.root().resolve("flux_pipeline/models/flux-tiny-dev").toString(),
                LoadOptions.builder().checkMemory(false).build());
        GenerationSettings huge = unchecked.resolve(GenerationRequest.builder().prompt("x").size(16384, 16384).imagesPerPrompt(4096).build());
        InvalidRequestException e = assertThrows(InvalidRequestException.class, () -> Outputs.check(tmp, huge, false, Outputs.Existing.KEEP));
        assertTrue(e.getMessage().contains("4096 images of 16384x16384 need up to") && e.getMessage().contains("free"), e.getMessage());
    }
}
