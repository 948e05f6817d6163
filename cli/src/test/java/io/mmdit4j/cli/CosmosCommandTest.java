package io.mmdit4j.cli;

import io.mmdit4j.GoldenData;
import io.mmdit4j.image.PngImages;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** COSMOS through the command line: its golden areas, the tiny demo with guidance, --from, --adapter, inspect, clear errors. */
class CosmosCommandTest {

    @Test
    void everyCosmosGoldenCasePasses() {
        for (String area : new String[] {"cosmos_transformer", "cosmos_pipeline", "wan_vae"}) {
            CheckGoldenCommandTest.Run r = CheckGoldenCommandTest.run("check-golden", GoldenData.root().resolve(area).toString());
            System.out.println(r.out().lines().filter(l -> l.startsWith("golden:")).findFirst().orElse(area + ": no summary"));
            assertEquals(0, r.exit(), area + ":\n" + r.out() + r.err());
            assertTrue(r.out().contains(" 0 failed, 0 skipped"), area + ":\n" + r.out());
            assertTrue(!r.out().contains("FAIL") && !r.out().contains("SKIP"), r.out());
        }
    }

    @Test
    void theDemoGeneratesWithGuidanceAndFromRepeatsIt(@TempDir Path tmp) throws IOException {
        Path first = tmp.resolve("fox.png"), again = tmp.resolve("again.png");
        CheckGoldenCommandTest.Run r = CheckGoldenCommandTest.run("generate", "--model", "cosmos-tiny-demo", "--prompt", "a red fox in the snow",
                "--seed", "3", "--width", "64", "--height", "48", "--steps", "4", "--mg-preset", "complexity", "--mg-w", "3", "--mg-layers", "1-",
                "--out", first.toString());
        assertEquals(0, r.exit(), r.out() + r.err());
        assertTrue(r.err().contains("cosmos-tiny-demo is a bundled demo model"), r.err());
        String meta = PngImages.readText(first).get("mmdit4j");
        for (String s : new String[] {"\"family\":\"cosmos\"", "\"sampler\":\"karras_x0_euler\"", "\"cfg_scale\":7.0", "\"rows\":\"cond\"",
                "\"layers\":\"1-\"", "Extremely complex, the highest quality"}) {
            assertTrue(meta.contains(s), s + " in " + meta);
        }
        r = CheckGoldenCommandTest.run("generate", "--from", first.toString(), "--out", again.toString());
        assertEquals(0, r.exit(), r.out() + r.err());
        assertArrayEquals(Files.readAllBytes(first), Files.readAllBytes(again), "--from reproduces the image bit for bit");
    }

    @Test
    void theRecordNamesTheAdapterAndFromLoadsItAgain(@TempDir Path tmp) throws IOException {
        Path demo = io.mmdit4j.models.ModelRegistry.standard().resolve("cosmos-tiny-demo");
        Path mine = Files.copy(demo.resolve("pooled_adapter.safetensors"), tmp.resolve("my_adapter.safetensors"));
        Path first = tmp.resolve("a.png"), again = tmp.resolve("b.png");
        CheckGoldenCommandTest.Run r = CheckGoldenCommandTest.run("generate", "--model", "cosmos-tiny-demo", "--adapter", mine.toString(),
                "--prompt", "x", "--width", "32", "--height", "32", "--steps", "2", "--mg-preset", "complexity", "--out", first.toString());
        assertEquals(0, r.exit(), r.out() + r.err());
        assertTrue(PngImages.readText(first).get("mmdit4j").contains("\"pooled_adapter\":\"" + mine.toString().replace("\\", "\\\\") + "\""),
                PngImages.readText(first).get("mmdit4j"));
        r = CheckGoldenCommandTest.run("generate", "--from", first.toString(), "--out", again.toString()); // loads my_adapter again
        assertEquals(0, r.exit(), r.out() + r.err());
        assertArrayEquals(Files.readAllBytes(first), Files.readAllBytes(again), "--from loads the recorded adapter: the same image");
        Files.delete(mine); // the recorded adapter is gone: a clear error, not the folder's adapter instead
        r = CheckGoldenCommandTest.run("generate", "--from", first.toString(), "--out", tmp.resolve("c.png").toString());
        assertEquals(2, r.exit(), r.out() + r.err());
        assertTrue(r.err().contains("my_adapter.safetensors"), r.err());
        assertTrue(Files.notExists(tmp.resolve("c.png")));
    }

    @Test
    void anExplicitAdapterLoadsAndBadOnesAreClearErrors(@TempDir Path tmp) throws IOException {
        Path demo = io.mmdit4j.models.ModelRegistry.standard().resolve("cosmos-tiny-demo");
        Path out = tmp.resolve("x.png");
        // the adapter of the demo given explicitly equals the folder's own
        CheckGoldenCommandTest.Run r = CheckGoldenCommandTest.run("generate", "--model", "cosmos-tiny-demo", "--adapter",
                demo.resolve("pooled_adapter.safetensors").toString(), "--prompt", "x", "--width", "32", "--height", "32", "--steps", "2", "--out", out.toString());
        assertEquals(0, r.exit(), r.out() + r.err());
        // an adapter of another model's shapes (the golden tiny adapter: CLIP 32, the demo's CLIP gives 24)
        r = CheckGoldenCommandTest.run("generate", "--model", "cosmos-tiny-demo", "--adapter",
                GoldenData.root().resolve("cosmos_transformer/models/tiny/pooled_adapter.safetensors").toString(), "--prompt", "x", "--width", "32",
                "--height", "32", "--steps", "2", "--out", tmp.resolve("y.png").toString());
        assertEquals(2, r.exit(), r.out() + r.err());
        assertTrue(r.err().contains("pooled") && r.err().contains("24") && r.err().contains("32"), r.err());
        assertTrue(Files.notExists(tmp.resolve("y.png")));
        // a pickle that calls code
        Path evil = tmp.resolve("checkpoint_9.pt");
        try (java.util.zip.ZipOutputStream z = new java.util.zip.ZipOutputStream(Files.newOutputStream(evil))) {
            z.putNextEntry(new java.util.zip.ZipEntry("checkpoint_9/data.pkl"));
            z.write("\u0080\u0002cposix\nsystem\nX\u0002\u0000\u0000\u0000id\u0085R.".getBytes(java.nio.charset.StandardCharsets.ISO_8859_1));
            z.closeEntry();
        }
        r = CheckGoldenCommandTest.run("generate", "--model", "cosmos-tiny-demo", "--adapter", evil.toString(), "--prompt", "x", "--width", "32",
                "--height", "32", "--steps", "2", "--out", tmp.resolve("z.png").toString());
        assertEquals(2, r.exit(), r.out() + r.err());
        assertTrue(r.err().contains("refusing") && r.err().contains("posix system"), r.err());
        // an adapter on a non-COSMOS model, and a non-Cosmos folder
        r = CheckGoldenCommandTest.run("generate", "--model", "flux-tiny-demo", "--adapter", demo.resolve("pooled_adapter.safetensors").toString(),
                "--prompt", "x", "--out", tmp.resolve("f.png").toString());
        assertEquals(2, r.exit(), r.out() + r.err());
        assertTrue(r.err().contains("--adapter") && r.err().contains("flux"), r.err());
    }

    @Test
    void trainsTheAdapterOnItsOwnSamplesResumesAndGeneratesWithIt(@TempDir Path tmp) throws IOException {
        Path data = Files.createDirectories(tmp.resolve("data")), out = tmp.resolve("adapter");
        for (String p : new String[] {"a red fox", "a blue house"}) {
            CheckGoldenCommandTest.Run r = CheckGoldenCommandTest.run("generate", "--model", "cosmos-tiny-demo", "--prompt", p, "--width", "32", "--height", "32",
                    "--steps", "2", "--save-latents", "--out", data.resolve(p.replace(' ', '_') + ".png").toString());
            assertEquals(0, r.exit(), r.out() + r.err());
            assertTrue(r.out().contains(".latents.safetensors"), r.out());
        }
        String[] train = {"train", "--recipe", "pooled-adapter", "--base", "cosmos-tiny-demo", "--data", data.toString(), "--out", out.toString(),
                "--steps", "4", "--save-every", "2", "--max-sequence-length", "16"};
        CheckGoldenCommandTest.Run r = CheckGoldenCommandTest.run(train);
        assertEquals(0, r.exit(), r.out() + r.err());
        assertTrue(r.out().contains("checkpoint_4.safetensors") && Files.isRegularFile(out.resolve("optimizer_4.pt")), r.out());
        String[] more = train.clone();
        more[10] = "6";
        String[] resumed = java.util.Arrays.copyOf(more, more.length + 1);
        resumed[more.length] = "--resume";
        r = CheckGoldenCommandTest.run(resumed);
        assertEquals(0, r.exit(), r.out() + r.err());
        assertTrue(r.err().contains("resuming") && r.err().contains("step 5/6"), r.err());
        r = CheckGoldenCommandTest.run("generate", "--model", "cosmos-tiny-demo", "--adapter", out.resolve("checkpoint_6.safetensors").toString(),
                "--prompt", "a red fox", "--width", "32", "--height", "32", "--steps", "2", "--mg-preset", "aesthetics", "--out", tmp.resolve("g.png").toString());
        assertEquals(0, r.exit(), r.out() + r.err());
        r = CheckGoldenCommandTest.run("train", "--recipe", "lora", "--base", "cosmos-tiny-demo", "--data", data.toString());
        assertEquals(2, r.exit());
        assertTrue(r.err().contains("pooled-adapter"), r.err());
        r = CheckGoldenCommandTest.run("train", "--recipe", "pooled-adapter", "--base", "flux-tiny-demo", "--data", data.toString(), "--out", tmp.resolve("f").toString());
        assertEquals(2, r.exit());
        assertTrue(r.err().contains("trains COSMOS"), r.err());
    }

    @Test
    void inspectDryRunsTheRealSizeModel() {
        CheckGoldenCommandTest.Run r = CheckGoldenCommandTest.run("inspect", "--config", "cosmos-predict2-2b");
        assertEquals(0, r.exit(), r.out() + r.err());
        assertTrue(r.out().contains("28 blocks") && r.out().contains("1,956,405,248") && r.out().contains("768x768")
                && r.out().contains("VAE decode [1, 3, 1, 768, 768]"), r.out());
    }
}
