package org.sam3spec

import android.graphics.Bitmap
import android.graphics.Color
import android.graphics.RectF
import java.io.Closeable

/** Instances found for one prompt, best first; masks are width x height bytes each (1 = object). */
class Segmentation(
    val width: Int,
    val height: Int,
    val presence: Float,
    val scores: FloatArray,
    private val boxValues: FloatArray,
    private val maskBytes: ByteArray,
) {
    val count: Int get() = scores.size

    fun box(index: Int): RectF =
        RectF(boxValues[index * 4], boxValues[index * 4 + 1], boxValues[index * 4 + 2], boxValues[index * 4 + 3])

    /** Instance [index] as an ARGB bitmap: [color] where the mask is set, transparent elsewhere. */
    fun maskBitmap(index: Int, color: Int = Color.argb(128, 30, 144, 255)): Bitmap {
        val pixels = width * height
        val argb = IntArray(pixels) { if (maskBytes[index * pixels + it].toInt() != 0) color else Color.TRANSPARENT }
        return Bitmap.createBitmap(argb, width, height, Bitmap.Config.ARGB_8888)
    }
}

/**
 * sam3spec on Android: one .pte exported by `sam3spec export` (+ `model.text_table.safetensors` beside it).
 *
 * ```
 * Sam3Segmenter(File(filesDir, "model.pte").path).use { seg ->
 *     seg.setImage(bitmap)
 *     val result = seg.segment(text = "red circle")
 *     overlay.setImageBitmap(result.maskBitmap(0))
 * }
 * ```
 * Not thread-safe: call from one worker thread (inference takes tens to hundreds of ms).
 */
class Sam3Segmenter(modelPath: String, threads: Int = 0) : Closeable {
    private var handle: Long = nativeOpen(modelPath, threads)
    private var track: Long = 0

    fun setImage(bitmap: Bitmap) {
        val (argb, width, height) = pixels(bitmap)
        nativeSetImage(checkOpen(), argb, width, height)
    }

    /** Text (a phrase of the text table), pixel boxes and/or pixel points (positive). */
    fun segment(
        text: String? = null,
        boxes: List<RectF> = emptyList(),
        points: List<Pair<Float, Float>> = emptyList(),
        threshold: Float = 0.5f,
    ): Segmentation = nativeSegment(checkOpen(), text, boxArray(boxes), pointArray(points), threshold)

    /** Starts a video from the current image (after setImage + segment on the first frame). */
    fun startVideo() {
        if (track != 0L) nativeFreeTrack(track)
        track = nativeStartTrack(checkOpen())
    }

    fun track(
        frame: Bitmap,
        text: String? = null,
        boxes: List<RectF> = emptyList(),
        points: List<Pair<Float, Float>> = emptyList(),
        threshold: Float = 0.5f,
    ): Segmentation {
        check(track != 0L) { "call startVideo() after the first frame's setImage + segment" }
        val (argb, width, height) = pixels(frame)
        return nativeTrack(checkOpen(), track, argb, width, height, text, boxArray(boxes), pointArray(points), threshold)
    }

    override fun close() {
        if (track != 0L) nativeFreeTrack(track)
        if (handle != 0L) nativeClose(handle)
        track = 0
        handle = 0
    }

    private fun checkOpen(): Long {
        check(handle != 0L) { "Sam3Segmenter is closed" }
        return handle
    }

    private fun pixels(bitmap: Bitmap): Triple<IntArray, Int, Int> {
        val argb = IntArray(bitmap.width * bitmap.height)
        bitmap.getPixels(argb, 0, bitmap.width, 0, 0, bitmap.width, bitmap.height)
        return Triple(argb, bitmap.width, bitmap.height)
    }

    private fun boxArray(boxes: List<RectF>): FloatArray? =
        if (boxes.isEmpty()) null else boxes.flatMap { listOf(it.left, it.top, it.right, it.bottom) }.toFloatArray()

    private fun pointArray(points: List<Pair<Float, Float>>): FloatArray? =
        if (points.isEmpty()) null else points.flatMap { listOf(it.first, it.second) }.toFloatArray()

    private companion object {
        init {
            System.loadLibrary("executorch")  // from the executorch-android AAR
            System.loadLibrary("sam3spec_jni")
        }

        @JvmStatic external fun nativeOpen(path: String, threads: Int): Long
        @JvmStatic external fun nativeClose(handle: Long)
        @JvmStatic external fun nativeSetImage(handle: Long, argb: IntArray, width: Int, height: Int)
        @JvmStatic external fun nativeSegment(
            handle: Long, text: String?, boxes: FloatArray?, points: FloatArray?, threshold: Float,
        ): Segmentation
        @JvmStatic external fun nativeStartTrack(handle: Long): Long
        @JvmStatic external fun nativeFreeTrack(state: Long)
        @JvmStatic external fun nativeTrack(
            handle: Long, state: Long, argb: IntArray, width: Int, height: Int,
            text: String?, boxes: FloatArray?, points: FloatArray?, threshold: Float,
        ): Segmentation
    }
}
