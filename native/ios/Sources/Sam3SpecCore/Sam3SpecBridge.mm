// Objective-C++ bridge: converts Foundation types to the C++ API and C++ exceptions to NSError.
#import "Sam3SpecBridge.h"

#include <memory>
#include <string>

#include "sam3spec/segmenter.h"

NSErrorDomain const S3SErrorDomain = @"org.sam3spec";

static NSError *S3SMakeError(const std::exception &error) {
  return [NSError errorWithDomain:S3SErrorDomain
                             code:1
                         userInfo:@{NSLocalizedDescriptionKey : @(error.what())}];
}

@interface S3SInstance ()
- (instancetype)initWithScore:(float)score box:(CGRect)box mask:(NSData *)mask;
@end

@implementation S3SInstance
- (instancetype)initWithScore:(float)score box:(CGRect)box mask:(NSData *)mask {
  if ((self = [super init])) {
    _score = score;
    _box = box;
    _mask = mask;
  }
  return self;
}
@end

@interface S3SSegmentation ()
- (instancetype)initWithResult:(const sam3spec::Segmentation &)result;
@end

@implementation S3SSegmentation
- (instancetype)initWithResult:(const sam3spec::Segmentation &)result {
  if ((self = [super init])) {
    _width = result.width;
    _height = result.height;
    _presence = result.presence;
    NSMutableArray<S3SInstance *> *instances = [NSMutableArray arrayWithCapacity:result.count()];
    const size_t pixels = static_cast<size_t>(result.width) * result.height;
    for (size_t i = 0; i < result.count(); ++i) {
      const auto &b = result.boxes[i];
      NSData *mask = [NSData dataWithBytes:result.masks.data() + i * pixels length:pixels];
      [instances addObject:[[S3SInstance alloc] initWithScore:result.scores[i]
                                                          box:CGRectMake(b[0], b[1], b[2] - b[0], b[3] - b[1])
                                                         mask:mask]];
    }
    _instances = instances;
  }
  return self;
}
@end

@implementation S3STrackState {
 @public
  sam3spec::TrackState _state;
}
@end

@implementation S3SSegmenter {
  std::unique_ptr<sam3spec::Segmenter> _segmenter;
}

- (nullable instancetype)initWithModelPath:(NSString *)path error:(NSError **)error {
  if ((self = [super init])) {
    try {
      _segmenter = sam3spec::Segmenter::open(path.UTF8String);
    } catch (const std::exception &e) {
      if (error) *error = S3SMakeError(e);
      return nil;
    }
  }
  return self;
}

+ (BOOL)setNumThreads:(NSUInteger)threads {
  return sam3spec::set_num_threads(static_cast<unsigned>(threads));
}

- (BOOL)setImageRGB:(const uint8_t *)rgb width:(NSInteger)width height:(NSInteger)height error:(NSError **)error {
  try {
    _segmenter->set_image(rgb, static_cast<int>(width), static_cast<int>(height));
    return YES;
  } catch (const std::exception &e) {
    if (error) *error = S3SMakeError(e);
    return NO;
  }
}

- (sam3spec::Prompt)promptForText:(nullable NSString *)text
                            boxes:(NSArray<NSValue *> *)boxes
                           points:(NSArray<NSValue *> *)points {
  sam3spec::Prompt prompt;
  if (text.length) prompt = _segmenter->text_prompt(std::string(text.UTF8String));
  for (NSValue *value in boxes) {
    CGRect r = value.CGRectValue;
    prompt.boxes.push_back({static_cast<float>(CGRectGetMinX(r)), static_cast<float>(CGRectGetMinY(r)),
                            static_cast<float>(CGRectGetMaxX(r)), static_cast<float>(CGRectGetMaxY(r))});
  }
  for (NSValue *value in points) {
    CGPoint p = value.CGPointValue;
    prompt.points.push_back({static_cast<float>(p.x), static_cast<float>(p.y)});
  }
  return prompt;
}

- (nullable S3SSegmentation *)segmentText:(nullable NSString *)text
                                    boxes:(NSArray<NSValue *> *)boxes
                                   points:(NSArray<NSValue *> *)points
                                threshold:(float)threshold
                                    error:(NSError **)error {
  try {
    auto result = _segmenter->segment([self promptForText:text boxes:boxes points:points], threshold);
    return [[S3SSegmentation alloc] initWithResult:result];
  } catch (const std::exception &e) {
    if (error) *error = S3SMakeError(e);
    return nil;
  }
}

- (BOOL)startTrack:(S3STrackState *)state error:(NSError **)error {
  try {
    _segmenter->start_track(state->_state);
    return YES;
  } catch (const std::exception &e) {
    if (error) *error = S3SMakeError(e);
    return NO;
  }
}

- (nullable S3SSegmentation *)trackRGB:(const uint8_t *)rgb
                                 width:(NSInteger)width
                                height:(NSInteger)height
                                  text:(nullable NSString *)text
                                 boxes:(NSArray<NSValue *> *)boxes
                                points:(NSArray<NSValue *> *)points
                                 state:(S3STrackState *)state
                             threshold:(float)threshold
                                 error:(NSError **)error {
  try {
    auto prompt = [self promptForText:text boxes:boxes points:points];
    auto result = _segmenter->track(rgb, static_cast<int>(width), static_cast<int>(height), prompt, state->_state,
                                    threshold);
    return [[S3SSegmentation alloc] initWithResult:result];
  } catch (const std::exception &e) {
    if (error) *error = S3SMakeError(e);
    return nil;
  }
}
@end
