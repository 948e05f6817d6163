package io.mmdit4j.cli;

import io.mmdit4j.GoldenData;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code mmdit check-golden}: line format, exit status, cases anywhere on disk, unsupported kinds. */
class CheckGoldenCommandTest {
    private static final Pattern LINE = Pattern.compile(
            "^(PASS|FAIL|SKIP) \\S+ \\S+: (max_abs=\\S+ max_rel=\\S+ \\(atol=\\S+ rtol=\\S+\\).*|.*)$");

    record Run(int exit, String out, String err) {}

    static Run run(String... args) {
        StringWriter out = new StringWriter(), err = new StringWriter();
        java.io.PrintStream saved = System.out, savedErr = System.err;
        java.io.ByteArrayOutputStream captured = new java.io.ByteArrayOutputStream(), capturedErr = new java.io.ByteArrayOutputStream();
        System.setOut(new java.io.PrintStream(captured, true, java.nio.charset.StandardCharsets.UTF_8));
        System.setErr(new java.io.PrintStream(capturedErr, true, java.nio.charset.StandardCharsets.UTF_8));
        try {
            CommandLine cli = Main.commandLine();
            cli.setOut(new PrintWriter(out, true));
            cli.setErr(new PrintWriter(err, true));
            int exit = cli.execute(args);
            return new Run(exit, captured.toString(java.nio.charset.StandardCharsets.UTF_8) + out,
                    capturedErr.toString(java.nio.charset.StandardCharsets.UTF_8) + err);
        } finally {
            System.setOut(saved);
            System.setErr(savedErr);
        }
    }

    @Test
    void passingCasePrintsOneLinePerOutputAndExitsZero() {
        Run r = run("check-golden", GoldenData.fluxCase("schnell_modg_w3_s1").toString());
        assertEquals(0, r.exit(), r.out() + r.err());
        long lines = r.out().lines().filter(l -> l.startsWith("PASS ")).count();
        assertEquals(8, lines, "4 outputs x (diffusers, bfl):\n" + r.out());
        assertTrue(r.out().contains("PASS flux_transformer/schnell_modg_w3_s1 temb_guided: max_abs="), r.out());
        assertTrue(r.out().contains("PASS flux_transformer/schnell_modg_w3_s1[bfl] sample: "), r.out());
        r.out().lines().filter(l -> !l.startsWith("golden:")).forEach(l -> assertTrue(LINE.matcher(l).matches(), "bad line: " + l));
    }

    @Test
    void aCaseCopiedElsewhereWithATighterToleranceFails(@TempDir Path tmp) throws IOException {
        Path src = GoldenData.fluxCase("schnell_plain");
        Path dst = tmp.resolve("cases/schnell_plain");
        Files.createDirectories(dst);
        for (String f : new String[] {"inputs.safetensors", "outputs.safetensors"}) Files.copy(src.resolve(f), dst.resolve(f));
        Path models = src.resolve("../../models").toRealPath();
        String json = Files.readString(src.resolve("case.json"))
                .replace("../../models/", models.toString() + "/")
                .replace("\"atol\": 0.0001", "\"atol\": 0.0").replace("\"rtol\": 0.0001", "\"rtol\": 0.0");
        Files.writeString(dst.resolve("case.json"), json);
        Run r = run("check-golden", dst.toString());
        assertEquals(1, r.exit(), r.out());
        assertTrue(r.out().contains("FAIL flux_transformer/schnell_plain sample: max_abs="), r.out());
        assertTrue(r.out().contains("(atol=0 rtol=0)"), r.out());
    }

    @Test
    void unsupportedKindsAreSkippedNotFailed(@TempDir Path tmp) throws IOException {
        // a kind no runner will ever support (the real kinds gain runners as model families are added)
        Path dst = Files.createDirectories(tmp.resolve("future_model/cases/plain"));
        Files.writeString(dst.resolve("case.json"), "{\"case\": \"future_model/plain\", \"kind\": \"future_model_transformer\"}");
        Run r = run("check-golden", dst.toString());
        assertEquals(0, r.exit(), r.out());
        assertTrue(r.out().contains("SKIP future_model/plain -: unsupported kind future_model_transformer"), r.out());
    }

    @Test
    void tokenIdFilesCheckEveryPromptOfEveryTokenizer() {
        Run r = run("check-golden", GoldenData.root().resolve("tokenizers/token_ids.json").toString());
        assertEquals(0, r.exit(), r.out());
        for (String t : new String[] {"clip", "t5@256", "t5@512", "t5_legacy@256", "t5_legacy@512"}) {
            assertTrue(r.out().contains("token_ids.json " + t + ": 42/42 prompts exact"), r.out());
        }
    }

    @Test
    void aTokenMismatchPrintsThePromptAndBothIdLists(@TempDir Path tmp) throws IOException {
        Path tokDir = GoldenData.root().resolve("../tokenizers").normalize();
        String json = "{\"prompts\":[{\"index\":0,\"prompt\":\"a cat\",\"clip\":{\"input_ids\":[49406,320,49407],"
                + "\"attention_mask\":[1,1,1]}}]}";
        Path f = tmp.resolve("ids.json");
        Files.writeString(f, json);
        Run r = run("check-golden", "--tokenizers", tokDir.toString(), f.toString());
        assertEquals(1, r.exit(), r.out());
        assertTrue(r.out().contains("FAIL " + f + " clip: 0/1 prompts exact"), r.out());
        assertTrue(r.out().contains("expected [49406, 320, 49407]") && r.out().contains("actual   [49406, 320, 2368, 49407, 49407"), r.out());
    }

    @Test
    void aMissingPathIsAFailureWithAReason(@TempDir Path tmp) {
        Run r = run("check-golden", tmp.resolve("nope").toString());
        assertEquals(1, r.exit(), r.out());
        assertTrue(r.out().contains("FAIL ") && r.out().contains("nope"), r.out());
    }

    /** Issue item 8: a folder without cases (a wrong path) printed "0 passed" and exit 0. */
    @Test
    void aFolderWithoutCasesFails(@TempDir Path tmp) throws IOException {
        Files.writeString(tmp.resolve("notes.txt"), "no cases here");
        Run r = run("check-golden", tmp.toString());
        assertEquals(1, r.exit(), r.out());
        assertTrue(r.out().contains("FAIL " + tmp + " -: error: no golden cases here"), r.out());
        assertTrue(r.out().contains("golden: 0 passed, 1 failed, 0 skipped"), r.out());
    }

    @Test
    void badArgumentsGiveOneClearErrorLine() {
        Run r = run("forward", "--latent", "15x16");
        assertEquals(2, r.exit(), r.out() + r.err());
        assertTrue(r.err().contains("mmdit: error: --latent 15x16: expected HxW"), r.err());
        r = run("forward", "--mg-layers", "5-x");
        assertEquals(2, r.exit());
        assertTrue(r.err().contains("layer schedule \"5-x\""), r.err());
    }
}
