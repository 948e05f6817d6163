package io.mmdit4j.text.t5;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The parts of a {@code sentencepiece.ModelProto} ({@code spiece.model}) that encoding uses, parsed by hand from the
 * protobuf wire format. Field numbers and proto2 defaults follow {@code sentencepiece_model.proto} (0.1.97):
 * <pre>
 * ModelProto      { repeated SentencePiece pieces = 1; TrainerSpec trainer_spec = 2; NormalizerSpec normalizer_spec = 3; }
 * SentencePiece   { string piece = 1; float score = 2; Type type = 3 [default NORMAL]; }
 * TrainerSpec     { ModelType model_type = 3 [default UNIGRAM]; int32 unk_id = 40 [0]; bos_id = 41 [1]; eos_id = 42 [2];
 *                   pad_id = 43 [-1]; bool byte_fallback = 35 [false]; bool treat_whitespace_as_suffix = 24 [false]; }
 * NormalizerSpec  { string name = 1; bytes precompiled_charsmap = 2; bool add_dummy_prefix = 3 [true];
 *                   bool remove_extra_whitespaces = 4 [true]; bool escape_whitespaces = 5 [true]; }
 * </pre>
 * Unknown fields are skipped. Instances are immutable.
 */
final class SentencePieceModel {
    static final int NORMAL = 1, UNKNOWN = 2, CONTROL = 3, USER_DEFINED = 4, UNUSED = 5, BYTE = 6;
    static final int UNIGRAM = 1;

    final Path source;
    final String[] pieces;
    final float[] scores;
    final int[] types;
    // trainer_spec
    final int modelType;
    final int unkId, bosId, eosId, padId;
    final boolean byteFallback;
    final boolean treatWhitespaceAsSuffix;
    // normalizer_spec
    final String normalizerName;
    final byte[] precompiledCharsmap;
    final boolean addDummyPrefix;
    final boolean removeExtraWhitespaces;
    final boolean escapeWhitespaces;

    SentencePieceModel(Path source, String[] pieces, float[] scores, int[] types, int modelType, int unkId, int bosId,
                       int eosId, int padId, boolean byteFallback, boolean treatWhitespaceAsSuffix, String normalizerName,
                       byte[] precompiledCharsmap, boolean addDummyPrefix, boolean removeExtraWhitespaces,
                       boolean escapeWhitespaces) {
        this.source = source;
        this.pieces = pieces;
        this.scores = scores;
        this.types = types;
        this.modelType = modelType;
        this.unkId = unkId;
        this.bosId = bosId;
        this.eosId = eosId;
        this.padId = padId;
        this.byteFallback = byteFallback;
        this.treatWhitespaceAsSuffix = treatWhitespaceAsSuffix;
        this.normalizerName = normalizerName;
        this.precompiledCharsmap = precompiledCharsmap;
        this.addDummyPrefix = addDummyPrefix;
        this.removeExtraWhitespaces = removeExtraWhitespaces;
        this.escapeWhitespaces = escapeWhitespaces;
    }

    int size() {
        return pieces.length;
    }

    /**
     * The same model with {@code normalizer_spec.add_dummy_prefix} overridden, as transformers'
     * {@code T5Tokenizer.get_spm_processor} does for {@code legacy=False}.
     */
    SentencePieceModel withAddDummyPrefix(boolean value) {
        return new SentencePieceModel(source, pieces, scores, types, modelType, unkId, bosId, eosId, padId, byteFallback,
                treatWhitespaceAsSuffix, normalizerName, precompiledCharsmap, value, removeExtraWhitespaces,
                escapeWhitespaces);
    }

    /** Reads and parses {@code file}; every problem is a {@link T5TokenizerFileException} naming the file. */
    static SentencePieceModel read(Path file) {
        byte[] data;
        try {
            data = Files.readAllBytes(file);
        } catch (NoSuchFileException e) {
            throw new T5TokenizerFileException(file, "file not found", e);
        } catch (IOException e) {
            throw new T5TokenizerFileException(file, "cannot read: " + e, e);
        } catch (OutOfMemoryError e) {
            throw new T5TokenizerFileException(file, "file too large to read", null);
        }
        return parse(data, file);
    }

    static SentencePieceModel parse(byte[] data, Path file) {
        if (data.length == 0) throw new T5TokenizerFileException(file, "empty file, not a sentencepiece model", null);
        List<String> pieces = new ArrayList<>();
        List<Float> scores = new ArrayList<>();
        List<Integer> types = new ArrayList<>();
        Trainer t = new Trainer();
        Norm n = new Norm();
        boolean sawTrainer = false, sawNormalizer = false;
        try {
            ProtoReader r = new ProtoReader(data);
            while (r.hasMore()) {
                int tag = r.readTag();
                switch (tag >>> 3) {
                    case 1 -> {
                        ProtoReader.expect(tag, ProtoReader.LENGTH_DELIMITED, "ModelProto.pieces");
                        ProtoReader p = r.readMessage();
                        String piece = "";
                        float score = 0f;
                        int type = NORMAL;
                        while (p.hasMore()) {
                            int pt = p.readTag();
                            switch (pt >>> 3) {
                                case 1 -> {
                                    ProtoReader.expect(pt, ProtoReader.LENGTH_DELIMITED, "SentencePiece.piece");
                                    piece = p.readString();
                                }
                                case 2 -> {
                                    ProtoReader.expect(pt, ProtoReader.FIXED32, "SentencePiece.score");
                                    score = p.readFloat();
                                }
                                case 3 -> {
                                    ProtoReader.expect(pt, ProtoReader.VARINT, "SentencePiece.type");
                                    type = p.readInt32();
                                }
                                default -> p.skip(pt);
                            }
                        }
                        pieces.add(piece);
                        scores.add(score);
                        types.add(type);
                    }
                    case 2 -> {
                        ProtoReader.expect(tag, ProtoReader.LENGTH_DELIMITED, "ModelProto.trainer_spec");
                        t.merge(r.readMessage());
                        sawTrainer = true;
                    }
                    case 3 -> {
                        ProtoReader.expect(tag, ProtoReader.LENGTH_DELIMITED, "ModelProto.normalizer_spec");
                        n.merge(r.readMessage());
                        sawNormalizer = true;
                    }
                    default -> r.skip(tag);
                }
            }
        } catch (ProtoReader.Malformed e) {
            throw new T5TokenizerFileException(file, "malformed or truncated sentencepiece model protobuf: " + e.getMessage(), e);
        }
        int size = pieces.size();
        if (size == 0) throw new T5TokenizerFileException(file, "not a sentencepiece model: no pieces (field 1) found", null);
        // Protobuf cannot see a cut that falls between two fields; sentencepiece always writes trainer_spec and
        // normalizer_spec after the pieces, so their absence means the file was truncated.
        if (!sawTrainer || !sawNormalizer) {
            throw new T5TokenizerFileException(file, "truncated or incomplete sentencepiece model: " + size
                    + " pieces but no " + (!sawTrainer ? "trainer_spec (field 2)" : "normalizer_spec (field 3)"), null);
        }
        String[] pa = pieces.toArray(new String[0]);
        float[] sa = new float[size];
        int[] ta = new int[size];
        for (int i = 0; i < size; i++) {
            sa[i] = scores.get(i);
            ta[i] = types.get(i);
        }
        SentencePieceModel m = new SentencePieceModel(file, pa, sa, ta, t.modelType, t.unkId, t.bosId, t.eosId, t.padId,
                t.byteFallback, t.treatWhitespaceAsSuffix, n.name, n.charsmap, n.addDummyPrefix,
                n.removeExtraWhitespaces, n.escapeWhitespaces);
        m.validate();
        return m;
    }

    /** The load-time checks of sentencepiece's {@code ModelInterface::InitializePieces} and model factory. */
    void validate() {
        if (modelType != UNIGRAM) {
            throw new T5TokenizerFileException(source, "model_type " + modelType
                    + " is not supported (only UNIGRAM = 1, as T5 uses)", null);
        }
        java.util.HashSet<String> seen = new java.util.HashSet<>();
        int unk = -1;
        for (int i = 0; i < pieces.length; i++) {
            if (pieces[i].isEmpty()) throw new T5TokenizerFileException(source, "piece " + i + " is empty", null);
            if (types[i] < NORMAL || types[i] > BYTE) {
                throw new T5TokenizerFileException(source, "piece " + i + " has invalid type " + types[i], null);
            }
            if (!seen.add(pieces[i])) {
                throw new T5TokenizerFileException(source, "piece " + i + " \"" + pieces[i] + "\" is already defined", null);
            }
            if (types[i] == UNKNOWN) {
                if (unk >= 0) throw new T5TokenizerFileException(source, "unk is already defined (pieces " + unk + " and " + i + ")", null);
                unk = i;
            }
            if (Float.isNaN(scores[i])) {
                throw new T5TokenizerFileException(source, "piece " + i + " \"" + pieces[i] + "\" has a NaN score", null);
            }
        }
        if (unk < 0) throw new T5TokenizerFileException(source, "unk is not defined (no piece of type UNKNOWN)", null);
    }

    private static final class Trainer {
        int modelType = UNIGRAM, unkId = 0, bosId = 1, eosId = 2, padId = -1;
        boolean byteFallback, treatWhitespaceAsSuffix;

        void merge(ProtoReader r) throws ProtoReader.Malformed {
            while (r.hasMore()) {
                int tag = r.readTag();
                int field = tag >>> 3;
                switch (field) {
                    case 3, 24, 35, 40, 41, 42, 43 -> {
                        ProtoReader.expect(tag, ProtoReader.VARINT, "TrainerSpec field");
                        long v = r.readVarint();
                        switch (field) {
                            case 3 -> modelType = (int) v;
                            case 24 -> treatWhitespaceAsSuffix = v != 0;
                            case 35 -> byteFallback = v != 0;
                            case 40 -> unkId = (int) v;
                            case 41 -> bosId = (int) v;
                            case 42 -> eosId = (int) v;
                            default -> padId = (int) v;
                        }
                    }
                    default -> r.skip(tag);
                }
            }
        }
    }

    private static final class Norm {
        String name = "";
        byte[] charsmap = new byte[0];
        boolean addDummyPrefix = true, removeExtraWhitespaces = true, escapeWhitespaces = true;

        void merge(ProtoReader r) throws ProtoReader.Malformed {
            while (r.hasMore()) {
                int tag = r.readTag();
                switch (tag >>> 3) {
                    case 1 -> {
                        ProtoReader.expect(tag, ProtoReader.LENGTH_DELIMITED, "NormalizerSpec.name");
                        name = r.readString();
                    }
                    case 2 -> {
                        ProtoReader.expect(tag, ProtoReader.LENGTH_DELIMITED, "NormalizerSpec.precompiled_charsmap");
                        charsmap = r.readBytes();
                    }
                    case 3 -> {
                        ProtoReader.expect(tag, ProtoReader.VARINT, "NormalizerSpec.add_dummy_prefix");
                        addDummyPrefix = r.readBool();
                    }
                    case 4 -> {
                        ProtoReader.expect(tag, ProtoReader.VARINT, "NormalizerSpec.remove_extra_whitespaces");
                        removeExtraWhitespaces = r.readBool();
                    }
                    case 5 -> {
                        ProtoReader.expect(tag, ProtoReader.VARINT, "NormalizerSpec.escape_whitespaces");
                        escapeWhitespaces = r.readBool();
                    }
                    default -> r.skip(tag);
                }
            }
        }
    }
}
