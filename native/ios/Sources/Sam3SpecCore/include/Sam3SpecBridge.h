// Objective-C view of the C++ sam3spec::Segmenter (native/include/sam3spec/segmenter.h), so Swift can
// call it. Errors come back as NSError (domain S3SErrorDomain) with the C++ message.
#import <CoreGraphics/CoreGraphics.h>
#import <Foundation/Foundation.h>

NS_ASSUME_NONNULL_BEGIN

extern NSErrorDomain const S3SErrorDomain;

/// One instance: score, pixel box and a width x height mask (1 byte per pixel, 1 = object).
@interface S3SInstance : NSObject
@property(nonatomic, readonly) float score;
@property(nonatomic, readonly) CGRect box;
@property(nonatomic, readonly) NSData *mask;
@end

@interface S3SSegmentation : NSObject
@property(nonatomic, readonly) NSInteger width;
@property(nonatomic, readonly) NSInteger height;
@property(nonatomic, readonly) float presence;
@property(nonatomic, readonly) NSArray<S3SInstance *> *instances;  // best first
@end

/// The video memory between frames (owned by the caller, as the C++ TrackState).
@interface S3STrackState : NSObject
@end

@interface S3SSegmenter : NSObject
/// Loads a .pte (and `<stem>.text_table.safetensors` beside it when present).
- (nullable instancetype)initWithModelPath:(NSString *)path error:(NSError **)error;
- (instancetype)init NS_UNAVAILABLE;
/// ExecuTorch thread-pool size (e.g. the number of performance cores).
+ (BOOL)setNumThreads:(NSUInteger)threads;
/// RGB bytes, row-major, 3 per pixel.
- (BOOL)setImageRGB:(const uint8_t *)rgb width:(NSInteger)width height:(NSInteger)height error:(NSError **)error;
/// Prompt: a phrase of the text table and/or pixel boxes (CGRect) and points (CGPoint, positive).
- (nullable S3SSegmentation *)segmentText:(nullable NSString *)text
                                    boxes:(NSArray<NSValue *> *)boxes
                                   points:(NSArray<NSValue *> *)points
                                threshold:(float)threshold
                                    error:(NSError **)error;
/// Starts a video from the current image (call after setImage + segment on the first frame).
- (BOOL)startTrack:(S3STrackState *)state error:(NSError **)error;
- (nullable S3SSegmentation *)trackRGB:(const uint8_t *)rgb
                                 width:(NSInteger)width
                                height:(NSInteger)height
                                  text:(nullable NSString *)text
                                 boxes:(NSArray<NSValue *> *)boxes
                                points:(NSArray<NSValue *> *)points
                                 state:(S3STrackState *)state
                             threshold:(float)threshold
                                 error:(NSError **)error;
@end

NS_ASSUME_NONNULL_END
