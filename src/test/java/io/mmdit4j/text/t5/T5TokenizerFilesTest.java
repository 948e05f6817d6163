package io.mmdit4j.text.t5;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;
import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Missing, truncated and malformed tokenizer files give a {@link T5TokenizerFileException} (an
 * {@link IllegalArgumentException}) that names the file and says what is wrong; never another exception or a hang.
 */
class T5TokenizerFilesTest {
    static final Path SPIECE = T5TokenizerTest.FLUX_DIR.resolve("spiece.model");

    static T5TokenizerFileException expectError(Path file, String messagePart, Supplier<?> load) {
        T5TokenizerFileException e = assertThrows(T5TokenizerFileException.class, load::get);
        assertEquals(file, e.file());
        assertTrue(e.getMessage().startsWith(file.toString()), e.getMessage());
        assertTrue(e.getMessage().contains(messagePart), "expected \"" + messagePart + "\" in: " + e.getMessage());
        return e;
    }

    static Path write(Path dir, String name, byte[] bytes) throws IOException {
        Path p = dir.resolve(name);
        Files.write(p, bytes);
        return p;
    }

    @Test
    void missingFilesAndFolders(@TempDir Path dir) {
        Path missing = dir.resolve("nope.model");
        expectError(missing, "file not found", () -> T5Tokenizer.fromSpiece(missing, false));
        Path noDir = dir.resolve("no-such-folder");
        expectError(noDir, "not a directory", () -> T5Tokenizer.fromFolder(noDir));
        expectError(dir, "neither spiece.model nor tokenizer.json", () -> T5Tokenizer.fromFolder(dir));
        Path noJson = dir.resolve("tokenizer.json");
        expectError(noJson, "file not found", () -> T5Tokenizer.fromTokenizerJson(noJson, false));
        assertThrows(IllegalArgumentException.class, () -> T5Tokenizer.fromFolder(null));
        assertThrows(IllegalArgumentException.class, () -> T5Tokenizer.fromSpiece(null, true));
    }

    @Test
    void emptyAndNonProtobufFiles(@TempDir Path dir) throws IOException {
        Path empty = write(dir, "empty.model", new byte[0]);
        expectError(empty, "empty file", () -> T5Tokenizer.fromSpiece(empty, false));
        Path text = write(dir, "text.model", "{\"legacy\": false}\n".getBytes(StandardCharsets.UTF_8));
        expectError(text, "malformed", () -> T5Tokenizer.fromSpiece(text, false));
        Path folder = Files.createDirectory(dir.resolve("folder.model"));
        expectError(folder, "cannot read", () -> T5Tokenizer.fromSpiece(folder, false));
    }

    @Test
    void truncatedSpieceModel(@TempDir Path dir) throws IOException {
        byte[] full = Files.readAllBytes(SPIECE);
        // Cut inside a piece, inside the trainer spec and inside the charsmap bytes.
        for (int len : new int[]{1, 2, 5, 1000, 553_360, full.length / 2, full.length - 1000, full.length - 1}) {
            Path p = write(dir, "cut" + len + ".model", Arrays.copyOf(full, len));
            expectError(p, "truncated", () -> T5Tokenizer.fromSpiece(p, true));
        }
    }

    @Test
    void randomGarbageNeverCrashes(@TempDir Path dir) throws IOException {
        byte[] full = Files.readAllBytes(SPIECE);
        Random r = new Random(3);
        for (int k = 0; k < 60; k++) {
            byte[] b;
            if (k < 20) {
                b = new byte[1 + r.nextInt(4096)];
                r.nextBytes(b);
            } else {  // the real model with a few flipped bytes somewhere
                b = full.clone();
                for (int j = 0; j < 1 + r.nextInt(4); j++) b[r.nextInt(b.length)] ^= (byte) (1 + r.nextInt(255));
            }
            Path p = write(dir, "garbage" + k + ".model", b);
            try {
                T5Tokenizer t = T5Tokenizer.fromSpiece(p, k % 2 == 0);
                t.encode("a photo of a cat, 日本語 <extra_id_0> ｆｕｌｌ", 64);  // a flip may leave a loadable model
            } catch (T5TokenizerFileException e) {
                assertEquals(p, e.file());
            } catch (RuntimeException e) {
                fail("garbage file " + k + " gave " + e, e);
            }
        }
    }

    @Test
    void invalidModelContents(@TempDir Path dir) throws IOException {
        SpmModelBuilder noUnk = new SpmModelBuilder().piece("a", -1).piece("b", -2);
        Path p1 = write(dir, "nounk.model", noUnk.build());
        expectError(p1, "unk is not defined", () -> T5Tokenizer.fromSpiece(p1, true));

        SpmModelBuilder dup = SpmModelBuilder.base().piece("ab", -7);
        Path p2 = write(dir, "dup.model", dup.build());
        expectError(p2, "\"ab\" is already defined", () -> T5Tokenizer.fromSpiece(p2, true));

        SpmModelBuilder bpe = SpmModelBuilder.base();
        bpe.modelType = 2;
        Path p3 = write(dir, "bpe.model", bpe.build());
        expectError(p3, "model_type 2 is not supported", () -> T5Tokenizer.fromSpiece(p3, true));

        SpmModelBuilder twoUnk = SpmModelBuilder.base().piece("<unk2>", 0, SentencePieceModel.UNKNOWN);
        Path p4 = write(dir, "twounk.model", twoUnk.build());
        expectError(p4, "unk is already defined", () -> T5Tokenizer.fromSpiece(p4, true));

        SpmModelBuilder badType = SpmModelBuilder.base().piece("zz", -1, 9);
        Path p5 = write(dir, "type.model", badType.build());
        expectError(p5, "invalid type 9", () -> T5Tokenizer.fromSpiece(p5, true));

        SpmModelBuilder emptyPiece = SpmModelBuilder.base().piece("", -1);
        Path p6 = write(dir, "emptypiece.model", emptyPiece.build());
        expectError(p6, "is empty", () -> T5Tokenizer.fromSpiece(p6, true));
    }

    @Test
    void brokenPrecompiledCharsmap(@TempDir Path dir) throws IOException {
        byte[] good = SentencePieceModel.read(SPIECE).precompiledCharsmap;
        SpmModelBuilder tiny = SpmModelBuilder.base();
        tiny.charsmap = new byte[]{1, 2, 3};
        Path p1 = write(dir, "tiny.model", tiny.build());
        expectError(p1, "blob for normalization rule is broken", () -> T5Tokenizer.fromSpiece(p1, true));

        SpmModelBuilder tooBig = SpmModelBuilder.base();
        tooBig.charsmap = good.clone();
        tooBig.charsmap[3] = (byte) 0x7F;  // trie size far beyond the blob
        Path p2 = write(dir, "toobig.model", tooBig.build());
        expectError(p2, "exceeds the input blob size", () -> T5Tokenizer.fromSpiece(p2, true));

        SpmModelBuilder noPool = SpmModelBuilder.base();  // the trie without its string pool but one byte
        int trieSize = (good[0] & 0xFF) | (good[1] & 0xFF) << 8 | (good[2] & 0xFF) << 16 | (good[3] & 0xFF) << 24;
        noPool.charsmap = Arrays.copyOf(good, 4 + trieSize + 1);
        Path p3 = write(dir, "nopool.model", noPool.build());
        expectError(p3, "corrupt double-array trie", () -> T5Tokenizer.fromSpiece(p3, true));

        SpmModelBuilder scrambled = SpmModelBuilder.base();  // root offset pointing far outside the units
        scrambled.charsmap = good.clone();
        scrambled.charsmap[7] = (byte) 0x7F;
        Path p4 = write(dir, "scrambled.model", scrambled.build());
        expectError(p4, "corrupt double-array trie", () -> T5Tokenizer.fromSpiece(p4, true));
    }

    @Test
    void badJsonFiles(@TempDir Path dir) throws IOException {
        Path folder = Files.createDirectory(dir.resolve("cfg"));
        Files.copy(SPIECE, folder.resolve("spiece.model"));
        Path cfg = write(folder, "tokenizer_config.json", "{\"legacy\": fals".getBytes(StandardCharsets.UTF_8));
        expectError(cfg, "malformed JSON", () -> T5Tokenizer.fromFolder(folder));
        write(folder, "tokenizer_config.json", "{\"legacy\": \"no\"}".getBytes(StandardCharsets.UTF_8));
        expectError(cfg, "\"legacy\" must be", () -> T5Tokenizer.fromFolder(folder));
        write(folder, "tokenizer_config.json", "{\"added_tokens_decoder\": {\"x\": {\"content\": \"<a>\"}}}"
                .getBytes(StandardCharsets.UTF_8));
        expectError(cfg, "not an integer id", () -> T5Tokenizer.fromFolder(folder));
        write(folder, "tokenizer_config.json", new byte[0]);
        expectError(cfg, "empty file", () -> T5Tokenizer.fromFolder(folder));

        Path jsonDir = Files.createDirectory(dir.resolve("json"));
        Path tj = write(jsonDir, "tokenizer.json", "[1, 2".getBytes(StandardCharsets.UTF_8));
        expectError(tj, "malformed JSON", () -> T5Tokenizer.fromFolder(jsonDir));
        write(jsonDir, "tokenizer.json", "{\"model\": {\"type\": \"BPE\", \"vocab\": {}}}".getBytes(StandardCharsets.UTF_8));
        expectError(tj, "model.type \"BPE\" is not supported", () -> T5Tokenizer.fromFolder(jsonDir));
        write(jsonDir, "tokenizer.json", "{\"model\": {\"type\": \"Unigram\", \"unk_id\": 0, \"vocab\": [[\"<unk>\", 0], [\"a\"]]}}"
                .getBytes(StandardCharsets.UTF_8));
        expectError(tj, "model.vocab[1] is not [string, number]", () -> T5Tokenizer.fromFolder(jsonDir));
        write(jsonDir, "tokenizer.json", "{\"model\": {\"type\": \"Unigram\", \"unk_id\": 5, \"vocab\": [[\"<unk>\", 0]]}}"
                .getBytes(StandardCharsets.UTF_8));
        expectError(tj, "unk_id", () -> T5Tokenizer.fromFolder(jsonDir));
        write(jsonDir, "tokenizer.json", ("{\"normalizer\": {\"type\": \"Precompiled\", \"precompiled_charsmap\": \"@@@\"},"
                + " \"model\": {\"type\": \"Unigram\", \"unk_id\": 0, \"vocab\": [[\"<unk>\", 0], [\"a\", -1]]}}")
                .getBytes(StandardCharsets.UTF_8));
        expectError(tj, "not valid base64", () -> T5Tokenizer.fromFolder(jsonDir));
    }
}
