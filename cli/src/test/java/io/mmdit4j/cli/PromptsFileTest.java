package io.mmdit4j.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.mmdit4j.image.A1111Infotext;
import io.mmdit4j.image.PngImages;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Batch ergonomics: a JSON Lines prompts file with per-line settings, plain prompt files, several seeds, FLUX's true CFG. */
class PromptsFileTest {
    private static JsonNode record(Path png) throws IOException {
        return new ObjectMapper().readTree(PngImages.readText(png).get("mmdit4j"));
    }

    @Test
    void jsonLinesAreRequestsOfTheirOwnOnTopOfTheOptions(@TempDir Path tmp) throws IOException {
        Path file = tmp.resolve("prompts.jsonl");
        Files.writeString(file, String.join("\n",
                "# one request per line; the command line's options are the defaults",
                "{\"prompt\": \"a wolf\", \"seed\": 3}",
                "",
                "{\"prompt\": \"a fox, at dusk\", \"seed\": 4, \"steps\": 2, \"width\": 32, \"height\": 48, \"negative_prompt\": \"blurry\", "
                        + "\"modulation_guidance\": [{\"pos\": \"vivid\", \"neg\": \"dull\", \"w\": 2, \"layers\": \"1-\"}]}",
                "{\"prompts\": [\"a cat\", \"a dog\"], \"seeds\": [7, 8]}"));
        Path out = tmp.resolve("out");
        CheckGoldenCommandTest.Run r = CheckGoldenCommandTest.run("generate", "--model", "flux-tiny-demo", "--prompts-file", file.toString(), "--width", "64", "--height", "64",
                "--steps", "3", "--true-cfg", "2", "--out", out.toString());
        assertEquals(0, r.exit(), r.out() + r.err());
        for (String f : new String[] {"000-seed3.png", "001-seed4.png", "002-seed7.png", "003-seed8.png"}) {
            assertTrue(Files.isRegularFile(out.resolve(f)), f + " in " + r.out());
        }
        JsonNode wolf = record(out.resolve("000-seed3.png")), fox = record(out.resolve("001-seed4.png"));
        assertEquals(64, wolf.get("width").asInt(), "the command line's size");
        assertEquals(3, wolf.get("steps").asInt());
        assertEquals(2.0, wolf.get("true_cfg_scale").asDouble(), "the command line's FLUX true CFG");
        assertEquals(32, fox.get("width").asInt(), "the line's size");
        assertEquals(2, fox.get("steps").asInt());
        assertEquals("blurry", fox.get("negative_prompt").asText(), "a line's negative prompt takes the run's true CFG scale");
        assertEquals(2.0, fox.get("modulation_guidance").get(0).get("w").asDouble());
        Map<String, String> a = A1111Infotext.parse(PngImages.readText(out.resolve("001-seed4.png")).get("parameters"));
        assertEquals("a fox, at dusk", a.get("Prompt"));
        assertEquals("blurry", a.get("Negative prompt"));
        assertEquals("a dog", record(out.resolve("003-seed8.png")).get("prompts").get(0).asText());

        Path again = tmp.resolve("again.png");
        r = CheckGoldenCommandTest.run("generate", "--from", out.resolve("001-seed4.png").toString(), "--out", again.toString());
        assertEquals(0, r.exit(), r.out() + r.err());
        assertArrayEquals(Files.readAllBytes(out.resolve("001-seed4.png")), Files.readAllBytes(again), "a line's image replays bit for bit");
    }

    @Test
    void badLinesFailBeforeAnyWorkNamingTheLine(@TempDir Path tmp) throws IOException {
        Path file = tmp.resolve("bad.jsonl");
        Path out = tmp.resolve("out");
        Files.writeString(file, "{\"prompt\": \"ok\"}\n{\"prompt\": \"x\", \"modell\": \"flux1-dev\"}\n");
        CheckGoldenCommandTest.Run r = CheckGoldenCommandTest.run("generate", "--model", "flux-tiny-demo", "--prompts-file", file.toString(), "--out", out.toString());
        assertEquals(2, r.exit());
        assertTrue(r.err().contains("bad.jsonl:2: unknown key(s) [modell]"), r.err());
        Files.writeString(file, "{\"prompt\": \"ok\"}\n{\"prompt\": \"x\", \"steps\": 0}\n");
        r = CheckGoldenCommandTest.run("generate", "--model", "flux-tiny-demo", "--prompts-file", file.toString(), "--out", out.toString());
        assertEquals(2, r.exit());
        assertTrue(r.err().contains("bad.jsonl:2"), r.err());
        Files.writeString(file, "{\"prompt\": \"ok\"}\n{not json\n");
        assertEquals(2, CheckGoldenCommandTest.run("generate", "--model", "flux-tiny-demo", "--prompts-file", file.toString(), "--out", out.toString()).exit());
        assertEquals(2, CheckGoldenCommandTest.run("generate", "--model", "flux-tiny-demo", "--prompts-file", file.toString(), "--prompt", "y", "--out", out.toString()).exit());
        assertFalse(Files.exists(out), "nothing written");
    }

    @Test
    void plainFilesAndSeveralSeedsMakeOneBatch(@TempDir Path tmp) throws IOException {
        Path file = tmp.resolve("prompts.txt");
        Files.writeString(file, "# comment\na wolf\n\n  # indented comment\na fox\n");
        Path out = tmp.resolve("out");
        CheckGoldenCommandTest.Run r = CheckGoldenCommandTest.run("generate", "--model", "flux-tiny-demo", "--prompts-file", file.toString(), "--seed", "5", "--seed", "9",
                "--width", "32", "--height", "32", "--steps", "1", "--out", out.toString());
        assertEquals(0, r.exit(), r.out() + r.err());
        assertEquals("a fox", record(out.resolve("001-seed9.png")).get("prompts").get(0).asText());
    }
}
