package io.mmdit4j.io;

import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Native;
import io.mmdit4j.runtime.Tensors;
import io.mmdit4j.runtime.Torch;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.LongOptional;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Enumeration;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;

import static org.bytedeco.pytorch.global.torch.empty;

/**
 * The tensors of a {@code torch.save} file (the zip format of PyTorch 1.6+: {@code <name>/data.pkl} and one
 * {@code <name>/data/<key>} entry per storage), read <b>without executing anything</b>: the pickle is interpreted opcode by
 * opcode by a small machine that knows dictionaries, lists, tuples, numbers, strings and exactly the callables a tensor
 * state dict needs ({@code collections.OrderedDict}, {@code torch._utils._rebuild_tensor_v2},
 * {@code torch._utils._rebuild_parameter}, the {@code torch.*Storage} types as persistent ids). Any other global (code,
 * {@code os.system}, {@code builtins.eval}, a class to instantiate) or opcode is refused with a
 * {@link ModelFormatException} before anything is built from it, as {@code torch.load(weights_only=True)} does.
 *
 * <p>The top-level object must be a dict; its tensor values are the entries (nested dicts flatten to dotted names,
 * other plain values such as a step counter are ignored). Tensors are copied out of the archive into memory (the files
 * this reads are adapters and small checkpoints); views share their storage as in PyTorch.
 */
public final class TorchCheckpoint implements TensorSource {
    private final Path file;
    private final Map<String, Tensor> tensors;

    private TorchCheckpoint(Path file, Map<String, Tensor> tensors) {
        this.file = file;
        this.tensors = tensors;
    }

    /** Whether {@code file} looks like a zip {@code torch.save} archive (by its first bytes). */
    public static boolean isTorchZip(Path file) {
        try (InputStream in = java.nio.file.Files.newInputStream(file)) {
            byte[] magic = in.readNBytes(4);
            return magic.length == 4 && magic[0] == 'P' && magic[1] == 'K' && magic[2] == 3 && magic[3] == 4;
        } catch (IOException e) {
            return false;
        }
    }

    public static TorchCheckpoint open(Path file) {
        Torch.init();
        if (!java.nio.file.Files.isRegularFile(file)) throw new ModelFormatException(file + ": no such file");
        try (ZipFile zip = new ZipFile(file.toFile())) {
            ZipEntry pkl = null;
            for (Enumeration<? extends ZipEntry> e = zip.entries(); e.hasMoreElements(); ) {
                ZipEntry z = e.nextElement();
                if (z.getName().endsWith("/data.pkl") && z.getName().indexOf('/') == z.getName().length() - "/data.pkl".length()) {
                    if (pkl != null) throw new ModelFormatException(file + ": several data.pkl records in one archive");
                    pkl = z;
                }
            }
            if (pkl == null) {
                throw new ModelFormatException(file + ": not a PyTorch checkpoint (a zip without <name>/data.pkl; the legacy non-zip format "
                        + "of PyTorch < 1.6 is not read)");
            }
            String prefix = pkl.getName().substring(0, pkl.getName().length() - "data.pkl".length());
            byte[] program;
            try (InputStream in = zip.getInputStream(pkl)) {
                program = in.readAllBytes();
            }
            Unpickler u = new Unpickler(file, program, key -> readStorage(zip, prefix + "data/" + key, file));
            Map<String, Tensor> out = new LinkedHashMap<>();
            try {
                Object root = u.run();
                if (!(root instanceof Map<?, ?> m)) {
                    throw new ModelFormatException(file + ": the checkpoint holds a " + describe(root) + ", expected a dict of tensors");
                }
                flatten("", m, out, file);
                return new TorchCheckpoint(file, Collections.unmodifiableMap(out));
            } catch (RuntimeException e) {
                Tensors.closeAll(out.values());
                throw e;
            } finally {
                u.release();
            }
        } catch (IOException e) {
            throw new ModelFormatException(file + ": cannot read the checkpoint archive: " + e.getMessage(), e);
        }
    }

    private static void flatten(String prefix, Map<?, ?> m, Map<String, Tensor> out, Path file) {
        for (Map.Entry<?, ?> e : m.entrySet()) {
            if (!(e.getKey() instanceof String k)) continue;
            Object v = e.getValue();
            if (v instanceof TensorRef t) out.put(prefix + k, Native.keep(t.build()));
            else if (v instanceof Map<?, ?> sub) flatten(prefix + k + ".", sub, out, file);
        }
    }

    /** One storage record as a flat uint8 tensor (owned). */
    private static Tensor readStorage(ZipFile zip, String name, Path file) {
        ZipEntry e = zip.getEntry(name);
        if (e == null) throw new ModelFormatException(file + ": the pickle names storage '" + name + "', which the archive lacks");
        try (InputStream in = zip.getInputStream(e)) {
            long size = e.getSize();
            if (size < 0) {
                byte[] all = in.readAllBytes();
                return bytesToTensor(all, all.length);
            }
            Tensor t = empty(new long[] {size}, new TensorOptions(ScalarType.Byte), new MemoryFormatOptional());
            BytePointer p = new BytePointer(t.data_ptr());
            byte[] buf = new byte[1 << 20];
            long at = 0;
            int n;
            while ((n = in.read(buf)) > 0) {
                if (at + n > size) throw new ModelFormatException(file + ": storage '" + name + "' is longer than its zip entry says");
                p.position(at).put(buf, 0, n);
                at += n;
            }
            if (at != size) throw new ModelFormatException(file + ": storage '" + name + "' is truncated (" + at + " of " + size + " bytes)");
            return t;
        } catch (IOException ex) {
            throw new ModelFormatException(file + ": cannot read storage '" + name + "': " + ex.getMessage(), ex);
        }
    }

    private static Tensor bytesToTensor(byte[] data, long n) {
        Tensor t = empty(new long[] {n}, new TensorOptions(ScalarType.Byte), new MemoryFormatOptional());
        if (n > 0) new BytePointer(t.data_ptr()).put(data, 0, (int) n);
        return t;
    }

    @Override
    public Set<String> keys() {
        return tensors.keySet();
    }

    @Override
    public TensorInfo info(String key) {
        Tensor t = tensors.get(key);
        if (t == null) return null;
        long[] shape = Tensors.shape(t);
        long bytes = t.numel() * Tensors.dtype(t).bytes();
        return new TensorInfo(key, Tensors.dtype(t), shape, 0, bytes);
    }

    @Override
    public Tensor load(String key) {
        Tensor t = tensors.get(key);
        if (t == null) throw new ModelFormatException(file + ": no tensor '" + key + "'");
        return t.view(Tensors.shape(t));
    }

    @Override
    public String origin() {
        return file.toString();
    }

    @Override
    public void close() {
        Tensors.closeAll(tensors.values());
    }

    private static String describe(Object o) {
        if (o == null) return "None";
        if (o instanceof TensorRef) return "tensor";
        if (o instanceof Map) return "dict";
        if (o instanceof List) return "list";
        if (o instanceof Object[]) return "tuple";
        return o.getClass().getSimpleName();
    }

    // ---------------------------------------------------------------- the pickle machine

    /** A storage type named by a {@code torch.*Storage} global. */
    private record StorageType(DType dtype) {}

    /** {@code ('storage', type, key, location, numel)} after BINPERSID. */
    private record StorageRef(DType dtype, Tensor bytes, long numel) {}

    /** A tensor to rebuild: storage, element offset, size, stride. */
    private record TensorRef(StorageRef storage, long offset, long[] size, long[] stride) {
        Tensor build() {
            long needed = offset;
            for (int i = 0; i < size.length; i++) if (size[i] > 0) needed += (size[i] - 1) * stride[i];
            boolean empty = java.util.Arrays.stream(size).anyMatch(s -> s == 0);
            if (!empty && needed + 1 > storage.numel()) {
                throw new ModelFormatException("a tensor of size " + java.util.Arrays.toString(size) + " / stride " + java.util.Arrays.toString(stride)
                        + " at offset " + offset + " reaches past its storage of " + storage.numel() + " elements");
            }
            try (PointerScope scope = new PointerScope()) {
                Tensor typed = storage.bytes().view(storage.dtype().scalarType());   // [numel]
                Tensor t = typed.as_strided(size, stride, new LongOptional(offset));
                return Tensors.keep(t);
            }
        }
    }

    /** A whitelisted callable (GLOBAL) the machine may REDUCE. */
    private enum Callable { ORDERED_DICT, REBUILD_TENSOR_V2, REBUILD_PARAMETER }

    private static final Object MARK = new Object();

    @FunctionalInterface
    private interface StorageReader {
        Tensor read(String key);
    }

    private static final class Unpickler {
        private final Path file;
        private final ByteBuffer in;
        private final StorageReader storages;
        private final List<Object> stack = new ArrayList<>();
        private final Map<Long, Object> memo = new HashMap<>();
        private final Map<String, StorageRef> loaded = new HashMap<>();

        Unpickler(Path file, byte[] program, StorageReader storages) {
            this.file = file;
            this.in = ByteBuffer.wrap(program).order(ByteOrder.LITTLE_ENDIAN);
            this.storages = storages;
        }

        void release() {
            loaded.values().forEach(s -> Native.release(s.bytes()));
        }

        private ModelFormatException bad(String what) {
            return new ModelFormatException(file + ": refusing to load this checkpoint: " + what + " (at byte " + (in.position() - 1)
                    + " of its pickle; only tensor state dicts are read, nothing in a checkpoint is executed)");
        }

        Object run() {
            while (true) {
                if (!in.hasRemaining()) throw bad("the pickle ends without STOP");
                int op = in.get() & 0xff;
                switch (op) {
                    case 0x80 -> { // PROTO
                        int v = in.get() & 0xff;
                        if (v > 5) throw bad("pickle protocol " + v);
                    }
                    case 0x95 -> in.getLong(); // FRAME: a length hint
                    case '.' -> { // STOP
                        if (stack.size() != 1) throw bad("the pickle leaves " + stack.size() + " values");
                        return stack.remove(0);
                    }
                    case '}' -> stack.add(new LinkedHashMap<Object, Object>()); // EMPTY_DICT
                    case ']' -> stack.add(new ArrayList<Object>());             // EMPTY_LIST
                    case ')' -> stack.add(new Object[0]);                       // EMPTY_TUPLE
                    case '(' -> stack.add(MARK);
                    case 'N' -> stack.add(null);
                    case 0x88 -> stack.add(Boolean.TRUE);
                    case 0x89 -> stack.add(Boolean.FALSE);
                    case 'J' -> stack.add((long) in.getInt());                  // BININT
                    case 'K' -> stack.add((long) (in.get() & 0xff));            // BININT1
                    case 'M' -> stack.add((long) (in.getShort() & 0xffff));     // BININT2
                    case 0x8a -> stack.add(long1(in.get() & 0xff));             // LONG1
                    case 'G' -> stack.add(Double.longBitsToDouble(Long.reverseBytes(in.getLong()))); // BINFLOAT (big-endian)
                    case 'X' -> stack.add(string(in.getInt()));                 // BINUNICODE
                    case 0x8c -> stack.add(string(in.get() & 0xff));            // SHORT_BINUNICODE
                    case 0x8d -> stack.add(string(checkedLength(in.getLong()))); // BINUNICODE8
                    case 'U' -> stack.add(string(in.get() & 0xff));             // SHORT_BINSTRING
                    case 'T' -> stack.add(string(in.getInt()));                 // BINSTRING
                    case 'q' -> memo.put((long) (in.get() & 0xff), peek());     // BINPUT
                    case 'r' -> memo.put(in.getInt() & 0xffffffffL, peek());    // LONG_BINPUT
                    case 0x94 -> memo.put((long) memo.size(), peek());          // MEMOIZE
                    case 'h' -> stack.add(memo(in.get() & 0xff));               // BINGET
                    case 'j' -> stack.add(memo(in.getInt() & 0xffffffffL));     // LONG_BINGET
                    case 't' -> stack.add(popMark().toArray());                 // TUPLE
                    case 0x85 -> stack.add(new Object[] {pop()});               // TUPLE1
                    case 0x86 -> { Object b = pop(), a = pop(); stack.add(new Object[] {a, b}); }          // TUPLE2
                    case 0x87 -> { Object c = pop(), b = pop(), a = pop(); stack.add(new Object[] {a, b, c}); } // TUPLE3
                    case 'c' -> stack.add(global(line(), line()));              // GLOBAL
                    case 0x93 -> { Object name = pop(), module = pop(); stack.add(global(str(module), str(name))); } // STACK_GLOBAL
                    case 'Q' -> stack.add(persistent(pop()));                   // BINPERSID
                    case 'R' -> { Object args = pop(), fn = pop(); stack.add(reduce(fn, args)); } // REDUCE
                    case 'b' -> { Object state = pop(); build(peek(), state); } // BUILD
                    case 's' -> { Object v = pop(), k = pop(); dict(peek()).put(k, v); }           // SETITEM
                    case 'u' -> { List<Object> items = popMark(); Map<Object, Object> d = dict(peek()); // SETITEMS
                        if (items.size() % 2 != 0) throw bad("SETITEMS with an odd number of values");
                        for (int i = 0; i < items.size(); i += 2) d.put(items.get(i), items.get(i + 1)); }
                    case 'a' -> { Object v = pop(); list(peek()).add(v); }      // APPEND
                    case 'e' -> { List<Object> items = popMark(); list(peek()).addAll(items); } // APPENDS
                    default -> throw bad(String.format("pickle opcode 0x%02x ('%s')", op, op >= 32 && op < 127 ? String.valueOf((char) op) : "?"));
                }
            }
        }

        private long checkedLength(long n) {
            if (n < 0 || n > in.remaining()) throw bad("a string of " + n + " bytes");
            return n;
        }

        private String string(long n) {
            if (n < 0 || n > in.remaining()) throw bad("a string of " + n + " bytes");
            byte[] b = new byte[(int) n];
            in.get(b);
            return new String(b, StandardCharsets.UTF_8);
        }

        private String line() {
            ByteArrayOutputStream b = new ByteArrayOutputStream();
            while (true) {
                if (!in.hasRemaining()) throw bad("an unterminated GLOBAL");
                byte c = in.get();
                if (c == '\n') return b.toString(StandardCharsets.UTF_8);
                b.write(c);
            }
        }

        private long long1(int n) {
            if (n > 8) throw bad("an integer of " + n + " bytes");
            long v = 0;
            for (int i = 0; i < n; i++) v |= (long) (in.get() & 0xff) << (8 * i);
            if (n > 0 && n < 8 && (v & (1L << (8 * n - 1))) != 0) v -= 1L << (8 * n); // two's complement
            return v;
        }

        private Object peek() {
            if (stack.isEmpty()) throw bad("an empty stack");
            return stack.get(stack.size() - 1);
        }

        private Object pop() {
            if (stack.isEmpty()) throw bad("an empty stack");
            Object o = stack.remove(stack.size() - 1);
            if (o == MARK) throw bad("a misplaced MARK");
            return o;
        }

        private List<Object> popMark() {
            int m = stack.lastIndexOf(MARK);
            if (m < 0) throw bad("no MARK");
            List<Object> items = new ArrayList<>(stack.subList(m + 1, stack.size()));
            stack.subList(m, stack.size()).clear();
            return items;
        }

        private Object memo(long key) {
            if (!memo.containsKey(key)) throw bad("memo key " + key + " used before it is set");
            return memo.get(key);
        }

        @SuppressWarnings("unchecked")
        private Map<Object, Object> dict(Object o) {
            if (!(o instanceof Map)) throw bad("SETITEM on a " + describe(o));
            return (Map<Object, Object>) o;
        }

        @SuppressWarnings("unchecked")
        private List<Object> list(Object o) {
            if (!(o instanceof List)) throw bad("APPEND on a " + describe(o));
            return (List<Object>) o;
        }

        private String str(Object o) {
            if (!(o instanceof String s)) throw bad("STACK_GLOBAL with a non-string name");
            return s;
        }

        private Object global(String module, String name) {
            String g = module + "." + name;
            switch (g) {
                case "collections.OrderedDict": return Callable.ORDERED_DICT;
                case "torch._utils._rebuild_tensor_v2": return Callable.REBUILD_TENSOR_V2;
                case "torch._utils._rebuild_parameter": return Callable.REBUILD_PARAMETER;
                default:
            }
            if (module.equals("torch") && name.endsWith("Storage")) {
                DType d = switch (name) {
                    case "FloatStorage" -> DType.F32;
                    case "DoubleStorage" -> DType.F64;
                    case "HalfStorage" -> DType.F16;
                    case "BFloat16Storage" -> DType.BF16;
                    case "LongStorage" -> DType.I64;
                    case "IntStorage" -> DType.I32;
                    case "ShortStorage" -> DType.I16;
                    case "CharStorage" -> DType.I8;
                    case "ByteStorage" -> DType.U8;
                    case "BoolStorage" -> DType.BOOL;
                    default -> null;
                };
                if (d != null) return new StorageType(d);
            }
            throw bad("the global '" + module + " " + name + "' (code or a class the checkpoint asks to call); allowed: "
                    + "collections.OrderedDict, torch._utils._rebuild_tensor_v2, torch._utils._rebuild_parameter, torch.*Storage");
        }

        private Object persistent(Object pid) {
            if (!(pid instanceof Object[] t) || t.length != 5 || !"storage".equals(t[0]) || !(t[1] instanceof StorageType type)
                    || !(t[2] instanceof String key) || !(t[4] instanceof Long numel)) {
                throw bad("a persistent id that is not ('storage', torch.<T>Storage, key, location, numel)");
            }
            if (!key.matches("[0-9A-Za-z_]+")) throw bad("the storage key '" + key + "'");
            StorageRef s = loaded.get(key);
            if (s == null) {
                Tensor bytes = storages.read(key);
                long expected = numel * type.dtype().bytes();
                if (bytes.numel() < expected) {
                    Native.release(bytes);
                    throw bad("storage '" + key + "' has " + bytes.numel() + " bytes, the pickle says " + numel + " " + type.dtype().torchName()
                            + " elements");
                }
                s = new StorageRef(type.dtype(), bytes, numel);
                loaded.put(key, s);
            } else if (s.dtype() != type.dtype()) {
                throw bad("storage '" + key + "' read as " + s.dtype() + " and as " + type.dtype());
            }
            return s;
        }

        private Object reduce(Object fn, Object argsObj) {
            if (!(fn instanceof Callable c)) throw bad("REDUCE on a " + describe(fn) + " (only whitelisted callables)");
            if (!(argsObj instanceof Object[] args)) throw bad("REDUCE without an argument tuple");
            switch (c) {
                case ORDERED_DICT -> {
                    if (args.length != 0) throw bad("OrderedDict called with arguments");
                    return new LinkedHashMap<Object, Object>();
                }
                case REBUILD_TENSOR_V2 -> {
                    if (args.length < 6 || !(args[0] instanceof StorageRef s) || !(args[1] instanceof Long offset)) {
                        throw bad("_rebuild_tensor_v2 with arguments other than (storage, offset, size, stride, requires_grad, hooks)");
                    }
                    return new TensorRef(s, offset, longs(args[2]), longs(args[3]));
                }
                case REBUILD_PARAMETER -> {
                    if (args.length < 1 || !(args[0] instanceof TensorRef t)) throw bad("_rebuild_parameter without a tensor");
                    return t;
                }
                default -> throw bad("REDUCE");
            }
        }

        private long[] longs(Object o) {
            if (!(o instanceof Object[] t)) throw bad("a tensor size or stride that is not a tuple");
            long[] out = new long[t.length];
            for (int i = 0; i < t.length; i++) {
                if (!(t[i] instanceof Long v) || v < 0) throw bad("a tensor size or stride entry " + t[i]);
                out[i] = v;
            }
            return out;
        }

        private void build(Object target, Object state) {
            // BUILD sets an object's state; on the dicts a state dict is made of, it only carries _metadata (ignored).
            if (!(target instanceof Map) && !(target instanceof TensorRef)) throw bad("BUILD on a " + describe(target));
        }
    }
}
